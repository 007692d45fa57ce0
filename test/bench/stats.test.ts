/** bench/stats.ts: the one median and percentile every benchmark reports with. */
import { describe, expect, it } from "vitest";
import { median, percentile } from "../../bench/stats.js";

describe("bench statistics", () => {
  it("median: the middle value, the mean of the middle two, NaN and Infinity left out, NaN for none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, Number.NaN, 1, Number.POSITIVE_INFINITY, 3])).toBe(3);
    expect(median([])).toBeNaN();
    expect(median([Number.NaN])).toBeNaN();
  });

  it("percentile: the sample at the rank, clamped to the last; NaN for none", () => {
    const sorted = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(percentile(sorted, 50)).toBe(6);
    expect(percentile(sorted, 99)).toBe(10);
    expect(percentile(sorted, 100)).toBe(10);
    expect(percentile(new Float64Array(0), 50)).toBeNaN();
  });
});
