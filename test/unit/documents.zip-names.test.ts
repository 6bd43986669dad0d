// A batch download's ZIP entry names: unique whatever the stored names, and cheap to find for many equal ones.
import { uniqueNamer } from '../../domains/documents/commands';

it('keeps the first of equal names and numbers the rest before the extension', () => {
  const name = uniqueNamer();
  expect(['a.pdf', 'a.pdf', 'b', 'a.pdf', 'b', 'a-2.pdf'].map(name)).toEqual(['a.pdf', 'a-2.pdf', 'b', 'a-3.pdf', 'b-2', 'a-2-2.pdf']);
});

it('never repeats a name when a stored name looks like a numbered one', () => {
  const name = uniqueNamer();
  const names = ['x-2.pdf', 'x.pdf', 'x.pdf', 'x.pdf', 'x-3.pdf'].map(name);
  expect(new Set(names).size).toBe(names.length);
  expect(names).toEqual(['x-2.pdf', 'x.pdf', 'x-3.pdf', 'x-4.pdf', 'x-3-2.pdf']);
});

it('names 20,000 equal items without trying every earlier name for each (this ran for minutes on the API thread)', () => {
  const name = uniqueNamer();
  const names = Array.from({ length: 20_000 }, () => name('invoice.pdf'));
  expect(new Set(names).size).toBe(20_000);
  expect(names[19_999]).toBe('invoice-20000.pdf');
}, 5_000);
