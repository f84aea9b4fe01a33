import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { transactionsOf } from '../../../../functions/adapters/store/assets.ts';

const sha = (n: number) => n.toString(16).padStart(64, '0');

describe('recording an asset’s files in transactions', () => {
  it('fits every transaction in DynamoDB’s 100 items, names no item twice, and records each file once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 1500 }),
        (contents) => {
          const files = contents.map((c, i) => ({ frame: i, sha256: sha(c), size: 1 }));
          const transactions = transactionsOf(files);
          for (const t of transactions) {
            const held = new Set(t.map((f) => f.sha256));
            // The asset, one item per content held, one per file.
            expect(1 + held.size + t.length).toBeLessThanOrEqual(100);
            expect(new Set(t.map((f) => f.frame)).size).toBe(t.length);
          }
          expect(
            transactions
              .flat()
              .map((f) => f.frame)
              .sort((a, b) => a! - b!),
          ).toEqual(files.map((f) => f.frame));
        },
      ),
    );
  });

  it('splits a content held by hundreds of frames over transactions, each holding it again', () => {
    const black = Array.from({ length: 250 }, (_, i) => ({ frame: i, sha256: sha(0), size: 1 }));
    expect(transactionsOf(black).map((t) => t.length)).toEqual([98, 98, 54]);
  });

  it('packs a page of distinct frames 49 to a transaction', () => {
    const plate = Array.from({ length: 1000 }, (_, i) => ({ frame: i, sha256: sha(i), size: 1 }));
    expect(transactionsOf(plate)).toHaveLength(Math.ceil(1000 / 49));
  });
});
