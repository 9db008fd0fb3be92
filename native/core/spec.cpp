#include "spec.h"

#include <cctype>

#include "error.h"
#include "fastscan.h"
#include "ivf.h"
#include "pq.h"

namespace quiver {

namespace {

constexpr const char* kIndexGrammar =
    "\"Flat\", \"PQ<M>[x<nbits>]\", \"PQ<M>x4fs\" or \"IVF<nlist>,[TRQ,]<codec>\", optionally followed by \",Refine\"";
constexpr const char* kCodecGrammar = "\"PQ<M>[x<nbits>]\"";

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

std::unique_ptr<Quantizer> make_codec_unnamed(const std::string& spec, size_t dim) {
  const std::vector<SpecComponent> parts = parse_spec(spec);
  QV_CHECK(parts.size() == 1 && parts[0].name == "PQ", InvalidArgument,
           "spec \"" << spec << "\": expected a codec spec " << kCodecGrammar);
  const PqParams pq = read_pq(spec, parts[0], false);
  return std::make_unique<ProductQuantizer>(dim, pq.m, pq.nbits);
}

std::unique_ptr<Index> make_index_unnamed(const std::string& spec, size_t dim, Metric metric) {
  const std::vector<SpecComponent> parts = parse_spec(spec);
  bool refine = false;
  size_t count = parts.size();
  if (count >= 2 && parts.back().name == "Refine") {
    expect_plain(spec, parts.back());
    refine = true;
    --count;
  }
  if (parts[0].name == "IVF") return make_ivf(spec, parts, count, dim, metric, refine);
  QV_CHECK(count == 1, InvalidArgument, "spec \"" << spec << "\": expected " << kIndexGrammar);
  const SpecComponent& main = parts[0];
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
                                      << kIndexGrammar);
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
