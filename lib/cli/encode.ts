// omniseg encode <image> --model <dir> --save-embedding <file>
import type { EncodeCommand } from './args.js';
import { jsonLine, ms } from './format.js';
import { loadSegmenter } from './model.js';
import { writeFloat32File, type CliIO } from './io.js';

export async function runEncode(args: EncodeCommand, io: CliIO): Promise<void> {
  const segmenter = await loadSegmenter(args);
  try {
    const embedding = await segmenter.encode(args.image);
    try {
      await writeFloat32File(args.saveEmbedding, await embedding.toFloat32ArrayAsync());
    } finally {
      embedding.dispose();
    }
    const { width, height, encodeMs, shape } = embedding;
    if (args.json) {
      io.stdout(jsonLine({ width, height, embeddingShape: shape, timings: { encodeMs } }));
    } else {
      io.stdout(
        `${args.image} (${width}x${height}): encoded in ${ms(encodeMs)}, ` +
          `embedding [${shape.join(', ')}] written to ${args.saveEmbedding}\n`,
      );
    }
  } finally {
    segmenter.dispose();
  }
}
