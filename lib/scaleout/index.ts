// Scale-out: file-based build steps (files.ts).
export * from './files';
