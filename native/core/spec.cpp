#include "spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "error.h"
#include "fastscan.h"
#include "ivf.h"
#include "opq.h"
#include "pca.h"
#include "pq.h"
#include "prq.h"
#include "rq.h"
#include "split.h"
#include "trq.h"

namespace quiver {

namespace {

// What a codec spec may be (also the fine codec of an IVF index). Options follow the codec, e.g. "RQ8x8,beam=16".
#define QV_CODEC_GRAMMAR                                                                                        \
  "PQ<M>[x<b>] | OPQ<M>,PQ<M>[x<b>][,iters=N] | "                                                            \
  "RQ<L>x<b>[,beam=B][,trainbeam=T][,norm=f32|u8][,refit=N][,pd=S] | "                                       \
  "PRQ<P>x<L>x<b>[,beam=B][,trainbeam=T][,norm=f32|u8][,refit=N][,pd=S] | "                                  \
  "TRQ<L>x<b>[,beam=B][,trainbeam=T][,refit=N][,iters=N][,norm=f32|u8][,pca=0|1][,reg=W][,sub=p][,pd=S] | "  \
  "TRQ1x<b>,PQ<M>x<b>[,beam=B][,iters=N][,pca=0|1][,reg=W][,sub=p][,pd=S] | RQ1x<b>,PQ<M>x<b>[,beam=B] | "   \
  "PCA<p>,<any of these codecs> | SPLIT<P>,<any of these codecs>"

constexpr const char* kIndexGrammar =
    "\"Flat\", \"PQ<M>x4fs\", \"IVF<nlist>,[TRQ,]<codec>\", \"IVF<nlist>,[TRQ,]PQ<M>x4fs\" or a codec (" QV_CODEC_GRAMMAR
    "), optionally followed by \",Refine\" or \",Refine,store=f32|fp16|int8\"";
constexpr const char* kCodecGrammar = QV_CODEC_GRAMMAR;

bool read_int(const std::string& s, size_t& pos, size_t* out) {
  const size_t start = pos;
  size_t value = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
    if (value > (size_t(1) << 40)) return false;  // absurd; also keeps the product below overflow
    value = value * 10 + size_t(s[pos] - '0');
    ++pos;
  }
  if (pos == start) return false;
  *out = value;
  return true;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

[[noreturn]] void bad_component(const std::string& spec, const SpecComponent& c, const std::string& why) {
  QV_THROW(InvalidArgument, "spec \"" << spec << "\": component \"" << c.text << "\" " << why);
}

}  // namespace

std::vector<SpecComponent> parse_spec(const std::string& spec) {
  QV_CHECK(spec.size() <= 1024, InvalidArgument, "spec: expected at most 1024 characters, got " << spec.size());
  std::vector<SpecComponent> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = spec.find(',', start);
    const std::string text = trim(spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    QV_CHECK(!text.empty(), InvalidArgument,
             "spec \"" << spec << "\": empty component; expected components separated by single commas");
    SpecComponent c;
    c.text = text;
    const size_t eq = text.find('=');
    if (eq != std::string::npos) {
      QV_CHECK(!out.empty(), InvalidArgument,
               "spec \"" << spec << "\": option \"" << text << "\" must follow the component it applies to");
      const std::string key = trim(text.substr(0, eq)), value = trim(text.substr(eq + 1));
      QV_CHECK(!key.empty() && !value.empty(), InvalidArgument,
               "spec \"" << spec << "\": option \"" << text << "\" must be written key=value");
      QV_CHECK(out.back().options.count(key) == 0, InvalidArgument,
               "spec \"" << spec << "\": option \"" << key << "\" is given twice");
      out.back().options[key] = value;
    } else {
      size_t pos = 0;
      while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
      if (pos == 0)
        bad_component(spec, c, "must start with a name such as Flat or PQ");
      c.name = text.substr(0, pos);
      size_t value;
      if (pos < text.size() && read_int(text, pos, &value)) {
        c.numbers.push_back(value);
        while (pos < text.size() && text[pos] == 'x') {
          ++pos;
          if (!read_int(text, pos, &value)) bad_component(spec, c, "has an 'x' not followed by a number");
          c.numbers.push_back(value);
        }
      }
      while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) c.suffix += text[pos++];
      if (pos != text.size())
        bad_component(spec, c, "is not NAME followed by numbers separated by 'x' (e.g. PQ16x8)");
      out.push_back(std::move(c));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {

struct PqParams {
  size_t m, nbits;
  bool fast_scan;  // "PQ<M>x4fs": 4-bit codes in the fast-scan block layout (indexes only)
};

PqParams read_pq(const std::string& spec, const SpecComponent& c, bool allow_fast_scan) {
  const bool fs = c.suffix == "fs";
  if (c.numbers.empty() || c.numbers.size() > 2 || (!c.suffix.empty() && !fs))
    bad_component(spec, c, "expected PQ<M>, PQ<M>x<nbits> or PQ<M>x4fs, e.g. PQ16x8");
  if (!c.options.empty())
    bad_component(spec, c, "takes no options, got " + c.options.begin()->first);
  const PqParams pq{c.numbers[0], c.numbers.size() == 2 ? c.numbers[1] : 8, fs};
  if (fs && !allow_fast_scan)
    bad_component(spec, c, "is an index layout (fast-scan); as a codec write PQ" + std::to_string(pq.m) + "x4");
  if (fs && pq.nbits != 4) bad_component(spec, c, "fast-scan needs 4-bit codes: write PQ<M>x4fs");
  return pq;
}

void expect_plain(const std::string& spec, const SpecComponent& c) {
  if (!c.numbers.empty() || !c.suffix.empty() || !c.options.empty())
    bad_component(spec, c, "takes no numbers or options");
}

}  // namespace

namespace {

std::unique_ptr<Quantizer> make_codec_unnamed(const std::string& spec, size_t dim);

// "IVF<nlist>,[TRQ[,iters=N],]<codec>" (the trailing ",Refine" already removed: `count` components remain).
std::unique_ptr<Index> make_ivf(const std::string& spec, const std::vector<SpecComponent>& parts, size_t count,
                                size_t dim, Metric metric, bool refine) {
  const SpecComponent& ivf = parts[0];
  if (ivf.numbers.size() != 1 || !ivf.suffix.empty() || !ivf.options.empty())
    bad_component(spec, ivf, "expected IVF<nlist>, e.g. IVF1024");
  size_t next = 1;
  bool transforms = false;
  int iterations = 3;
  if (next < count && parts[next].name == "TRQ" && parts[next].numbers.empty()) {
    const SpecComponent& trq = parts[next];
    if (!trq.suffix.empty()) bad_component(spec, trq, "expected TRQ (local transforms), optionally with iters=N");
    for (const auto& option : trq.options) {
      if (option.first != "iters") bad_component(spec, trq, "knows only the option iters=N, got " + option.first);
      const std::string& v = option.second;
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos)
        bad_component(spec, trq, "iters must be an integer from 1 to 100");
      iterations = std::stoi(v);
    }
    transforms = true;
    ++next;
  }
  QV_CHECK(next < count, InvalidArgument,
           "spec \"" << spec << "\": IVF needs a fine codec after it, e.g. \"IVF1024,PQ16x8\"");
  // "PQ<M>x4fs": plain 4-bit PQ codes kept in the fast-scan block layout in every list.
  if (count == next + 1 && parts[next].name == "PQ" && parts[next].suffix == "fs") {
    const PqParams pq = read_pq(spec, parts[next], true);
    return std::make_unique<IVFIndex>(dim, metric, ivf.numbers[0], transforms, iterations,
                                      std::make_unique<ProductQuantizer>(dim, pq.m, pq.nbits), refine, true);
  }
  // The rest is the fine codec's own spec, re-assembled with its options.
  std::string codec;
  for (size_t i = next; i < count; ++i) {
    if (!codec.empty()) codec += ",";
    codec += parts[i].text;
    for (const auto& option : parts[i].options) codec += "," + option.first + "=" + option.second;
  }
  std::unique_ptr<Quantizer> fine;
  try {
    fine = make_codec_unnamed(codec, dim);
  } catch (const Error& e) {
    QV_THROW(InvalidArgument, "spec \"" << spec << "\": the fine codec \"" << codec << "\" is invalid: " << e.what());
  }
  return std::make_unique<IVFIndex>(dim, metric, ivf.numbers[0], transforms, iterations, std::move(fine), refine);
}

// The options of one codec, gathered from all of its components (a composite such as "TRQ1x8,PQ14x4,beam=4"
// may carry them after either part). Every read marks its key; finish() rejects any key nobody read, naming
// the codec and the options it knows.
class CodecOptions {
 public:
  CodecOptions(const std::string& spec, const std::vector<SpecComponent>& parts, size_t count) : spec_(spec) {
    for (size_t i = 0; i < count; ++i)
      for (const auto& option : parts[i].options) {
        QV_CHECK(values_.count(option.first) == 0, InvalidArgument,
                 "spec \"" << spec << "\": option \"" << option.first << "\" is given twice");
        values_[option.first] = option.second;
      }
  }

  size_t integer(const char* key, size_t fallback, size_t lo, size_t hi) {
    const auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    used_.push_back(key);
    const std::string& v = it->second;
    size_t value = 0;
    bool ok = !v.empty() && v.size() <= 9 && v.find_first_not_of("0123456789") == std::string::npos;
    if (ok) value = size_t(std::stoul(v));
    QV_CHECK(ok && value >= lo && value <= hi, InvalidArgument,
             "spec \"" << spec_ << "\": option " << key << " must be an integer from " << lo << " to " << hi
                       << ", got \"" << v << "\"");
    return value;
  }

  double number(const char* key, double fallback, double lo, double hi) {
    const auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    used_.push_back(key);
    const std::string& v = it->second;
    char* end = nullptr;
    const double value = std::strtod(v.c_str(), &end);
    QV_CHECK(end && *end == '\0' && std::isfinite(value) && value >= lo && value <= hi, InvalidArgument,
             "spec \"" << spec_ << "\": option " << key << " must be a number from " << lo << " to " << hi
                       << ", got \"" << v << "\"");
    return value;
  }

  NormStorage norm() {
    const auto it = values_.find("norm");
    if (it == values_.end()) return NormStorage::Float32;
    used_.push_back("norm");
    QV_CHECK(it->second == "f32" || it->second == "u8", InvalidArgument,
             "spec \"" << spec_ << "\": option norm must be f32 (4 bytes per vector) or u8 (1 byte), got \""
                       << it->second << "\"");
    return parse_norm_storage(it->second);
  }

  void finish(const char* codec, const char* known) const {
    for (const auto& option : values_)
      QV_CHECK(std::find(used_.begin(), used_.end(), option.first) != used_.end(), InvalidArgument,
               "spec \"" << spec_ << "\": " << codec << " has no option \"" << option.first << "\""
                         << (*known ? std::string("; it knows ") + known : std::string("; it takes none")));
  }

 private:
  std::string spec_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

// NAME<a>x<b>… with exactly `min_numbers` … `max_numbers` numbers and no suffix; numbers past those written
// get `fallback`. `form` names the expected shape for the message.
std::vector<size_t> read_numbers(const std::string& spec, const SpecComponent& c, size_t min_numbers,
                                 size_t max_numbers, size_t fallback, const char* form) {
  if (c.numbers.size() < min_numbers || c.numbers.size() > max_numbers || !c.suffix.empty())
    bad_component(spec, c, std::string("expected ") + form);
  std::vector<size_t> out(c.numbers);
  out.resize(max_numbers, fallback);
  return out;
}

// Builds the codec written by parts[0 … count) (options included).
std::unique_ptr<Quantizer> build_codec(const std::string& spec, const std::vector<SpecComponent>& parts,
                                       size_t count, size_t dim, const char* grammar = kCodecGrammar) {
  QV_CHECK(count >= 1, InvalidArgument, "spec \"" << spec << "\": expected a codec: " << kCodecGrammar);
  const SpecComponent& first = parts[0];
  CodecOptions options(spec, parts, count);
  const auto expect_count = [&](size_t want, const char* form) {
    QV_CHECK(count == want, InvalidArgument,
             "spec \"" << spec << "\": expected " << form << (count > want ? ", with nothing after it" : ""));
  };
  const auto second_is = [&](const char* name) { return count >= 2 && parts[1].name == name; };

  if (first.name == "PQ") {
    expect_count(1, "PQ<M>[x<b>] alone (an OPQ rotation is written before it: OPQ<M>,PQ<M>x<b>)");
    const PqParams pq = read_pq(spec, first, false);
    return std::make_unique<ProductQuantizer>(dim, pq.m, pq.nbits);
  }
  // The number of a wrapper component written "<name><n>,<codec>" (PCA, SPLIT): it takes no options of its own
  // (they belong to the codec after it) and must be followed by a codec.
  const auto wrapper_number = [&](const char* name, const char* form, const char* what_follows) {
    const size_t n = read_numbers(spec, first, 1, 1, 0, form)[0];
    QV_CHECK(first.options.empty(), InvalidArgument,
             "spec \"" << spec << "\": " << name << n << " takes no options (\"" << first.options.begin()->first
                       << "\" given); options belong to the codec after it");
    QV_CHECK(count >= 2, InvalidArgument,
             "spec \"" << spec << "\": " << name << n << " must be followed by " << what_follows << ", e.g. " << name
                       << n << ",RQ8x8");
    return n;
  };
  if (first.name == "PCA") {
    // "PCA<p>,<codec>": the codec after it works in p dimensions; its options are its own.
    const size_t p = wrapper_number("PCA", "PCA<p> followed by a codec, e.g. PCA128,RQ8x8",
                                    "the codec that encodes the projected vectors");
    QV_CHECK(parts[1].name != "PCA", InvalidArgument, "spec \"" << spec << "\": PCA may appear only once");
    QV_CHECK(p >= 1 && p <= dim, InvalidArgument,
             "spec \"" << spec << "\": PCA" << p << " must keep between 1 and d = " << dim << " dimensions");
    const std::vector<SpecComponent> rest(parts.begin() + 1, parts.begin() + count);
    return std::make_unique<PCAQuantizer>(dim, p, build_codec(spec, rest, count - 1, p, grammar));
  }
  if (first.name == "SPLIT") {
    // "SPLIT<P>,<codec>": P contiguous parts, each encoded by its own instance of the codec after it (split.h).
    const size_t P = wrapper_number("SPLIT", "SPLIT<P> followed by a codec, e.g. SPLIT2,RQ8x8",
                                    "the codec that encodes each part");
    for (size_t c = 1; c < count; ++c)
      QV_CHECK(parts[c].name != "SPLIT", InvalidArgument, "spec \"" << spec << "\": SPLIT may appear only once");
    QV_CHECK(P >= 1 && P <= SplitQuantizer::kMaxParts && P <= dim, InvalidArgument,
             "spec \"" << spec << "\": SPLIT" << P << " must cut d = " << dim << " into between 1 and "
                       << std::min(dim, SplitQuantizer::kMaxParts) << " parts");
    const std::vector<SpecComponent> rest(parts.begin() + 1, parts.begin() + count);
    std::vector<std::unique_ptr<Quantizer>> codecs;
    for (size_t p = 0; p < P; ++p)
      codecs.push_back(build_codec(spec, rest, count - 1, SplitQuantizer::cut_dim(dim, P, p), grammar));
    return std::make_unique<SplitQuantizer>(dim, std::move(codecs));
  }
  if (first.name == "OPQ") {
    const size_t m = read_numbers(spec, first, 1, 1, 0, "OPQ<M> followed by PQ<M>x<b>, e.g. OPQ16,PQ16x8")[0];
    QV_CHECK(second_is("PQ"), InvalidArgument,
             "spec \"" << spec << "\": OPQ" << m << " must be followed by PQ" << m << "x<b>, e.g. OPQ16,PQ16x8");
    expect_count(2, "OPQ<M>,PQ<M>x<b>");
    SpecComponent pq_part = parts[1];
    pq_part.options.clear();  // options were gathered above
    const PqParams pq = read_pq(spec, pq_part, false);
    QV_CHECK(pq.m == m, InvalidArgument,
             "spec \"" << spec << "\": OPQ" << m << " rotates for " << m << " sub-quantizers, so it must be followed by PQ"
                       << m << "x<b>, got PQ" << pq.m);
    const size_t iters = options.integer("iters", OPQQuantizer::kDefaultIterations, 1, 100);
    options.finish("OPQ", "iters");
    return std::make_unique<OPQQuantizer>(dim, pq.m, pq.nbits, iters);
  }
  if (first.name == "RQ" && count >= 2) {
    // "RQ1x<b>,PQ<M>x<b>": the first RQ level, then PQ on the residual (no transforms).
    const std::vector<size_t> n = read_numbers(spec, first, 2, 2, 0, "RQ1x<b> before PQ<M>x<b>");
    QV_CHECK(n[0] == 1 && second_is("PQ"), InvalidArgument,
             "spec \"" << spec << "\": an RQ level can only be followed by PQ as RQ1x<b>,PQ<M>x<b> (one first "
                       "level, PQ on its residual); for more RQ stages write RQ<L>x<b>");
    expect_count(2, "RQ1x<b>,PQ<M>x<b>");
    SpecComponent pq_part = parts[1];
    pq_part.options.clear();
    const PqParams pq = read_pq(spec, pq_part, false);
    TRQOptions o;
    o.transforms = false;
    o.beam = options.integer("beam", 1, 1, 256);
    options.finish("RQ1x<b>,PQ<M>x<b>", "beam");
    return std::make_unique<TransformedResidualQuantizer>(dim, n[1], FineQuantizerKind::Product, pq.m, pq.nbits, o);
  }
  if (first.name == "RQ") {
    const std::vector<size_t> n = read_numbers(spec, first, 1, 2, 8, "RQ<L>x<b>, e.g. RQ8x8");
    RQOptions o;
    o.beam = options.integer("beam", RQOptions::kDefaultBeam, 1, 256);
    o.norm = options.norm();
    o.train_beam = options.integer("trainbeam", 0, 1, 256);
    o.refit_rounds = options.integer("refit", RQOptions::kDefaultRefitRounds, 0, 20);
    o.progressive_steps = options.integer("pd", 0, 0, 64);
    options.finish("RQ", "beam, trainbeam, norm, refit, pd");
    return std::make_unique<ResidualQuantizer>(dim, n[0], n[1], o);
  }
  if (first.name == "PRQ") {
    expect_count(1, "PRQ<P>x<L>x<b>");
    const std::vector<size_t> n = read_numbers(spec, first, 2, 3, 8, "PRQ<P>x<L>x<b>, e.g. PRQ2x4x8");
    RQOptions o;
    o.beam = options.integer("beam", 1, 1, 256);
    o.norm = options.norm();
    o.train_beam = options.integer("trainbeam", 0, 1, 256);
    o.refit_rounds = options.integer("refit", 0, 0, 20);
    o.progressive_steps = options.integer("pd", 0, 0, 64);
    options.finish("PRQ", "beam, trainbeam, norm, refit, pd");
    return std::make_unique<ProductResidualQuantizer>(dim, n[0], n[1], n[2], o);
  }
  if (first.name == "TRQ") {
    const std::vector<size_t> n = read_numbers(spec, first, 1, 2, 8, "TRQ<L>x<b> or TRQ1x<b>,PQ<M>x<b>");
    TRQOptions o;
    o.beam = options.integer("beam", 1, 1, 256);
    o.iterations = options.integer("iters", TransformedResidualQuantizer::kDefaultIterations, 1, 50);
    o.pca_init = options.integer("pca", 0, 0, 1) == 1;
    // Only an RQ fine quantizer takes trainbeam and refit (read in its branches, so that PQ rejects them).
    const auto read_rq_fine_options = [&]() {
      o.train_beam = options.integer("trainbeam", 0, 1, 256);
      o.refit_rounds = options.integer("refit", TransformedResidualQuantizer::kDefaultRefitRounds, 0, 20);
    };
    o.prior = options.number("reg", TransformedResidualQuantizer::kDefaultPrior, 0, 1e6);
    o.subspace = options.integer("sub", 0, 1, 65536);
    o.progressive_steps = options.integer("pd", 0, 0, 64);
    o.norm = options.norm();
    if (count == 1) {
      QV_CHECK(n[0] >= 2, InvalidArgument,
               "spec \"" << spec << "\": TRQ1x" << n[1] << " alone has no fine quantizer; write TRQ<L>x<b> with L >= 2 "
                         "(first level + L−1 RQ stages) or TRQ1x<b>,PQ<M>x<b>");
      read_rq_fine_options();
      options.finish("TRQ", "beam, trainbeam, refit, iters, norm, pca, reg, sub, pd");
      return std::make_unique<TransformedResidualQuantizer>(dim, n[1], FineQuantizerKind::Residual, n[0] - 1, n[1], o);
    }
    QV_CHECK(n[0] == 1 && (second_is("PQ") || second_is("RQ")), InvalidArgument,
             "spec \"" << spec << "\": a TRQ first level followed by a fine quantizer is written TRQ1x<b>,PQ<M>x<b> "
                       "or TRQ1x<b>,RQ<L>x<b>");
    expect_count(2, "TRQ1x<b>,PQ<M>x<b>");
    SpecComponent fine = parts[1];
    fine.options.clear();
    if (fine.name == "PQ") {
      const PqParams pq = read_pq(spec, fine, false);
      options.finish("TRQ1x<b>,PQ<M>x<b>", "beam, iters, pca, reg, sub, pd");
      return std::make_unique<TransformedResidualQuantizer>(dim, n[1], FineQuantizerKind::Product, pq.m, pq.nbits, o);
    }
    const std::vector<size_t> f = read_numbers(spec, fine, 1, 2, 8, "RQ<L>x<b> after TRQ1x<b>");
    read_rq_fine_options();
    options.finish("TRQ1x<b>,RQ<L>x<b>", "beam, trainbeam, refit, iters, norm, pca, reg, sub, pd");
    return std::make_unique<TransformedResidualQuantizer>(dim, n[1], FineQuantizerKind::Residual, f[0], f[1], o);
  }
  QV_THROW(InvalidArgument, "spec \"" << spec << "\": unknown component \"" << first.text << "\"; expected "
                                      << grammar);
}

std::unique_ptr<Quantizer> make_codec_unnamed(const std::string& spec, size_t dim) {
  const std::vector<SpecComponent> parts = parse_spec(spec);
  QV_CHECK(parts.back().name != "Refine", InvalidArgument,
           "spec \"" << spec << "\": Refine belongs to indexes (it keeps the float vectors); a codec spec is "
                     << kCodecGrammar);
  return build_codec(spec, parts, parts.size(), dim);
}

std::unique_ptr<Index> make_index_parts(const std::string& spec, const std::vector<SpecComponent>& parts,
                                        size_t count, size_t dim, Metric metric, bool refine);

std::unique_ptr<Index> make_index_unnamed(const std::string& spec, size_t dim, Metric metric) {
  const std::vector<SpecComponent> parts = parse_spec(spec);
  bool refine = false;
  RefineStorage storage = RefineStorage::None;
  size_t count = parts.size();
  if (count >= 2 && parts.back().name == "Refine") {
    SpecComponent plain = parts.back();
    const auto store = plain.options.find("store");
    if (store != plain.options.end()) {
      if (!parse_refine_storage(store->second, &storage))
        bad_component(spec, plain, "option store must be f32 (4 bytes per dimension), fp16 (2) or int8 (1), got \"" +
                                       store->second + "\"");
      plain.options.erase(store);
    } else {
      storage = RefineStorage::Float32;
    }
    if (!plain.options.empty())
      bad_component(spec, plain, "knows only the option store=f32|fp16|int8, got " + plain.options.begin()->first);
    expect_plain(spec, plain);
    refine = true;
    --count;
  }
  std::unique_ptr<Index> index = make_index_parts(spec, parts, count, dim, metric, refine);
  if (refine) index->set_refine_storage(storage);
  return index;
}

std::unique_ptr<Index> make_index_parts(const std::string& spec, const std::vector<SpecComponent>& parts,
                                        size_t count, size_t dim, Metric metric, bool refine) {
  if (parts[0].name == "IVF") return make_ivf(spec, parts, count, dim, metric, refine);
  const SpecComponent& main = parts[0];
  if (main.name != "Flat" && main.name != "PQ")  // every other codec, exhaustive ADC over its codes
    return std::make_unique<CodecIndex>(dim, metric, build_codec(spec, parts, count, dim, kIndexGrammar), refine);
  QV_CHECK(count == 1, InvalidArgument, "spec \"" << spec << "\": expected " << kIndexGrammar);
  if (main.name == "Flat") {
    expect_plain(spec, main);
    QV_CHECK(!refine, InvalidArgument,
             "spec \"" << spec << "\": Flat is exact already; Refine applies to compressed indexes");
    return std::make_unique<FlatIndex>(dim, metric);
  }
  if (main.name == "PQ") {
    const PqParams pq = read_pq(spec, main, true);
    if (pq.fast_scan) return std::make_unique<FastScanIndex>(dim, metric, pq.m, refine);
    return std::make_unique<CodecIndex>(dim, metric, std::make_unique<ProductQuantizer>(dim, pq.m, pq.nbits),
                                        refine);
  }
  QV_THROW(InvalidArgument, "spec \"" << spec << "\": unknown component \"" << main.text << "\"; expected "
                                      << kIndexGrammar);  // not reached: PQ and Flat return above
}

// Constructors reject impossible parameters (M > dim, ...) without knowing the spec text: say which spec.
template <typename F>
auto naming_spec(const std::string& spec, F&& build) -> decltype(build()) {
  try {
    return build();
  } catch (const Error& e) {
    const std::string prefix = "spec \"" + spec + "\"";
    if (e.code() != ErrorCode::InvalidArgument || std::string(e.what()).rfind(prefix, 0) == 0) throw;
    throw Error(e.code(), prefix + ": " + e.what(), e.file(), e.line());
  }
}

}  // namespace

std::unique_ptr<Quantizer> make_codec(const std::string& spec, size_t dim) {
  return naming_spec(spec, [&] { return make_codec_unnamed(spec, dim); });
}

std::unique_ptr<Index> make_index(const std::string& spec, size_t dim, Metric metric) {
  return naming_spec(spec, [&] { return make_index_unnamed(spec, dim, metric); });
}

SpecInfo describe_index_spec(const std::string& spec, size_t dim) {
  const std::unique_ptr<Index> index = make_index(spec, dim, Metric::L2);
  return SpecInfo{index->spec(), index->code_size()};
}

}  // namespace quiver
