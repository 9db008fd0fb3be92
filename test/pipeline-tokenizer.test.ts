// The WordPiece tokenizer built from a model's vocabulary file: BERT's basic tokenization and greedy
// longest-match pieces, from vocab.txt and from tokenizer.json, feeding an ONNX text model.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { OnnxEmbedder, encodeOnnxModel, loadWordPieceTokenizer, wordPieceTokenizer } from '../lib/pipeline/index';

const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'the', 'un', '##aff', '##able', 'run', '##ning', '!', ',', 'cafe', 'caf', '##e', '中', '文', '$', 'is'];
const id = (token: string) => vocab.indexOf(token);

t.test('basic tokenization, greedy longest-match pieces, special tokens', async (t) => {
  const tokenize = wordPieceTokenizer(vocab);
  t.same(tokenize('The unaffable RUNNING!'), ['[CLS]', 'the', 'un', '##aff', '##able', 'run', '##ning', '!', '[SEP]'].map(id));
  t.same(tokenize('Café,  is\tthe\n$'), ['[CLS]', 'cafe', ',', 'is', 'the', '$', '[SEP]'].map(id), 'accents stripped, longest piece wins, whitespace and ASCII symbols split');
  t.same(tokenize('unknown 中文'), ['[CLS]', '[UNK]', '中', '文', '[SEP]'].map(id), 'an uncoverable word is one [UNK]; CJK characters stand alone');
  t.same(tokenize(''), ['[CLS]', '[SEP]'].map(id));
  t.same(wordPieceTokenizer(vocab, { maxLength: 4 })('the the the the'), ['[CLS]', 'the', 'the', '[SEP]'].map(id), 'maxLength keeps [SEP]');
  t.same(wordPieceTokenizer(vocab, { lowercase: false })('The'), ['[CLS]', '[UNK]', '[SEP]'].map(id), 'cased: "The" is not "the"');
  t.throws(() => wordPieceTokenizer(['a', 'b']), { name: 'RangeError', message: /options\.unknownToken: the vocabulary has no "\[UNK\]" token/ });
  t.throws(() => wordPieceTokenizer(42 as never), { name: 'TypeError', message: /vocabulary: expected an array of tokens/ });
  t.throws(() => wordPieceTokenizer(vocab, { maxLength: 1 }), { name: 'RangeError', message: /options\.maxLength: expected an integer from 2/ });
  t.throws(() => wordPieceTokenizer(vocab)(5 as never), { name: 'TypeError', message: /text: expected a string/ });
});

t.test('vocab.txt and tokenizer.json files; the tokenizer feeds an ONNX text model', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-vocab-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'vocab.txt'), vocab.join('\n') + '\n');
  const json = { model: { type: 'WordPiece', unk_token: '[UNK]', vocab: Object.fromEntries(vocab.map((v, i) => [v, i])) }, normalizer: { type: 'BertNormalizer', lowercase: false } };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  const fromTxt = await loadWordPieceTokenizer(path.join(dir, 'vocab.txt'));
  t.same(fromTxt('the running'), ['[CLS]', 'the', 'run', '##ning', '[SEP]'].map(id));
  const fromJson = await loadWordPieceTokenizer(path.join(dir, 'tokenizer.json'));
  t.same(fromJson('The'), ['[CLS]', '[UNK]', '[SEP]'].map(id), "tokenizer.json's lowercase: false is honoured");
  fs.writeFileSync(path.join(dir, 'bpe.json'), JSON.stringify({ model: { type: 'BPE', vocab: {} } }));
  await t.rejects(loadWordPieceTokenizer(path.join(dir, 'bpe.json')), { name: 'RangeError', message: /holds a BPE tokenizer; only WordPiece/ });

  // The ids reach the model: a graph that returns the ids as floats, [batch, tokens] → mean over the real tokens.
  const model = encodeOnnxModel({
    inputs: [
      { name: 'input_ids', type: 'int64', shape: ['batch', 'tokens'] },
      { name: 'attention_mask', type: 'int64', shape: ['batch', 'tokens'] },
    ],
    outputs: [{ name: 'out', type: 'float32', shape: ['batch', 'tokens', 1] }],
    nodes: [
      { op: 'Cast', inputs: ['input_ids'], outputs: ['idsF'], attributes: { to: 1 } },
      { op: 'Unsqueeze', inputs: ['idsF', 'axis2'], outputs: ['out'] },
    ],
    initializers: [{ name: 'axis2', dims: [1], data: BigInt64Array.of(2n) }],
  });
  const embedder = await OnnxEmbedder.create(model, { input: { type: 'text', tokenizer: fromTxt } });
  const v = await embedder.embed(['the running', '!']);
  const meanId = (tokens: string[]) => tokens.map(id).reduce((a, b) => a + b, 0) / tokens.length;
  t.same(Array.from(v), [meanId(['[CLS]', 'the', 'run', '##ning', '[SEP]']), meanId(['[CLS]', '!', '[SEP]'])].map(Math.fround));
  await embedder.close();
});
