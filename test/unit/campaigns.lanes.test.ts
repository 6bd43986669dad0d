// A send's lanes: the recipients 1..N split into ranges that together cover each number exactly once, so lanes
// sending at once never mail anyone twice or leave anyone out; cursors from runs begun before lanes read as one lane.
import { lanesFrom, lanesOf, type SendLane } from '../../workflows/campaigns.api';

/** The recipient numbers each lane covers. */
const covered = (lanes: SendLane[], size: number) => lanes.map((l) => {
  const ns: number[] = [];
  for (let n = l.after + 1; n <= (l.until ?? size); n++) ns.push(n);
  return ns;
});

it.each([
  [1_000_000, 2], [10, 3], [7, 7], [3, 5], [1, 4], [999, 64],
])('splits %i recipients into lanes of %i that cover each number once', (size, lanes) => {
  const plan = lanesOf({ audienceSize: size, lanes });
  expect(plan).toHaveLength(Math.min(lanes, size));
  const all = covered(plan, size).flat();
  expect(all).toHaveLength(size);
  expect(new Set(all).size).toBe(size);
  // In order, from the first recipient to the last.
  expect(all.every((n, i) => n === i + 1)).toBe(true);
  // About the same size: no lane more than one recipient longer than another.
  const lengths = covered(plan, size).map((ns) => ns.length);
  expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(1);
  expect(plan.every((l) => !l.done)).toBe(true);
});

it('sends in one open lane with one lane, with no plan (a run begun before lanes), and with nobody to send to', () => {
  const open = [{ after: 0, until: null, done: false }];
  expect(lanesOf({ audienceSize: 500, lanes: 1 })).toEqual(open);
  expect(lanesOf({ audienceSize: 500 })).toEqual(open);
  expect(lanesOf(undefined)).toEqual(open);
  expect(lanesOf({ audienceSize: 0, lanes: 4 })).toEqual(open);
});

it('reads the number cursor of a run begun before lanes as one open lane from there, and lanes as they are', () => {
  expect(lanesFrom(1_500)).toEqual([{ after: 1_500, until: null, done: false }]);
  const lanes = [{ after: 10, until: 50, done: true }, { after: 70, until: 100, done: false }];
  expect(lanesFrom(lanes)).toBe(lanes);
});
