// A WordPiece tokenizer (BERT, MiniLM, E5, …) built from the vocabulary file a model ships — `vocab.txt` (one
// token per line, the id is the line number) or a Hugging Face `tokenizer.json` whose model is WordPiece — so
// that OnnxEmbedder can take text without a tokenizer written by hand. It follows BERT's basic tokenizer:
// clean, optionally lowercase and strip accents, split on whitespace and punctuation (and around CJK
// characters), then split each word greedily into the longest vocabulary pieces, continuations marked '##'.
import * as fs from 'node:fs';

import { describe, expectBoolean, expectInteger, expectOptions, expectString } from './args';
import type { TextTokenizer } from './onnx';

export interface WordPieceOptions {
  /** Lowercase and strip accents first, as "uncased" models expect (default: tokenizer.json's setting, else true). */
  lowercase?: boolean;
  /** Tokens kept, counting [CLS] and [SEP] (default 512). */
  maxLength?: number;
  unknownToken?: string;
  clsToken?: string;
  sepToken?: string;
}

/** A vocabulary: tokens in id order, or token → id. */
export type Vocabulary = readonly string[] | Readonly<Record<string, number>>;

const MAX_WORD_CHARS = 100; // BERT's max_input_chars_per_word: longer words become [UNK]

function isPunctuation(ch: string): boolean {
  const code = ch.codePointAt(0)!;
  // ASCII symbols count as punctuation in BERT even where Unicode calls them symbols ($, +, ^, `, …).
  if ((code >= 33 && code <= 47) || (code >= 58 && code <= 64) || (code >= 91 && code <= 96) || (code >= 123 && code <= 126)) return true;
  return /\p{P}/u.test(ch);
}

function isCjk(code: number): boolean {
  return (
    (code >= 0x4e00 && code <= 0x9fff) ||
    (code >= 0x3400 && code <= 0x4dbf) ||
    (code >= 0x20000 && code <= 0x2a6df) ||
    (code >= 0x2a700 && code <= 0x2ceaf) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0x2f800 && code <= 0x2fa1f)
  );
}

/** BERT's basic tokenization: the words and punctuation marks of `text`. */
function basicTokens(text: string, lowercase: boolean): string[] {
  let cleaned = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code === 0 || code === 0xfffd || (/\p{C}/u.test(ch) && !/\s/u.test(ch))) continue;
    cleaned += /\s/u.test(ch) ? ' ' : isCjk(code) ? ` ${ch} ` : ch;
  }
  if (lowercase) cleaned = cleaned.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
  const tokens: string[] = [];
  for (const word of cleaned.split(' ')) {
    let current = '';
    for (const ch of word) {
      if (isPunctuation(ch)) {
        if (current) tokens.push(current);
        tokens.push(ch);
        current = '';
      } else {
        current += ch;
      }
    }
    if (current) tokens.push(current);
  }
  return tokens;
}

/** Builds a TextTokenizer (for OnnxEmbedder's text input) from a WordPiece vocabulary. */
export function wordPieceTokenizer(vocabulary: Vocabulary, options?: WordPieceOptions): TextTokenizer {
  const ids = new Map<string, number>();
  if (Array.isArray(vocabulary)) {
    vocabulary.forEach((token, i) => {
      expectString(token, `vocabulary[${i}]`);
      if (!ids.has(token)) ids.set(token, i);
    });
  } else if (vocabulary !== null && typeof vocabulary === 'object') {
    for (const [token, id] of Object.entries(vocabulary)) ids.set(token, expectInteger(id, `vocabulary[${JSON.stringify(token)}]`, 0, 2 ** 31 - 1));
  } else {
    throw new TypeError(`vocabulary: expected an array of tokens or a { token: id } object, got ${describe(vocabulary)}`);
  }
  if (ids.size === 0) throw new RangeError('vocabulary: expected at least one token, got none');
  const o = expectOptions<WordPieceOptions>(options, 'options', ['lowercase', 'maxLength', 'unknownToken', 'clsToken', 'sepToken']);
  const lowercase = o.lowercase === undefined ? true : expectBoolean(o.lowercase, 'options.lowercase');
  const maxLength = o.maxLength === undefined ? 512 : expectInteger(o.maxLength, 'options.maxLength', 2, 1 << 16);
  const special = (value: unknown, name: string, fallback: string) => {
    const token = value === undefined ? fallback : expectString(value, name);
    const id = ids.get(token);
    if (id === undefined) throw new RangeError(`${name}: the vocabulary has no ${JSON.stringify(token)} token`);
    return id;
  };
  const unk = special(o.unknownToken, 'options.unknownToken', '[UNK]');
  const cls = special(o.clsToken, 'options.clsToken', '[CLS]');
  const sep = special(o.sepToken, 'options.sepToken', '[SEP]');

  const pieces = (word: string): number[] => {
    const chars = Array.from(word);
    if (chars.length > MAX_WORD_CHARS) return [unk];
    const out: number[] = [];
    for (let start = 0; start < chars.length; ) {
      let end = chars.length;
      let found: number | undefined;
      for (; end > start; end--) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        found = ids.get(piece);
        if (found !== undefined) break;
      }
      // A word that cannot be covered by vocabulary pieces is one unknown token, as in BERT.
      if (found === undefined) return [unk];
      out.push(found);
      start = end;
    }
    return out;
  };

  return (text: string) => {
    const out = [cls];
    for (const token of basicTokens(expectString(text, 'text'), lowercase)) {
      for (const id of pieces(token)) {
        if (out.length >= maxLength - 1) break;
        out.push(id);
      }
    }
    out.push(sep);
    return out;
  };
}

/**
 * Reads a WordPiece vocabulary file — vocab.txt, or a tokenizer.json with a WordPiece model (its normaliser's
 * lowercase setting is used unless options.lowercase says otherwise) — and builds the tokenizer.
 */
export async function loadWordPieceTokenizer(file: string, options?: WordPieceOptions): Promise<TextTokenizer> {
  expectString(file, 'path');
  expectOptions<WordPieceOptions>(options, 'options', ['lowercase', 'maxLength', 'unknownToken', 'clsToken', 'sepToken']);
  const text = await fs.promises.readFile(file, 'utf8');
  if (!text.trimStart().startsWith('{')) return wordPieceTokenizer(text.replace(/\r?\n$/, '').split(/\r?\n/), options);
  let json: { model?: { type?: string; vocab?: Record<string, number>; unk_token?: string }; normalizer?: { lowercase?: boolean } | null };
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`path: ${file} is neither a vocab.txt nor valid JSON: ${(error as Error).message}`);
  }
  if (json.model?.type !== 'WordPiece' || json.model.vocab === undefined) {
    throw new RangeError(`path: ${file} holds a ${json.model?.type ?? 'unknown'} tokenizer; only WordPiece is supported`);
  }
  const o = { ...options };
  if (o.lowercase === undefined && typeof json.normalizer?.lowercase === 'boolean') o.lowercase = json.normalizer.lowercase;
  if (o.unknownToken === undefined && json.model.unk_token) o.unknownToken = json.model.unk_token;
  return wordPieceTokenizer(json.model.vocab, o);
}
