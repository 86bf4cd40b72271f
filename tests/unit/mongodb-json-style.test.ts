// The mongodb backend stores results as kombu's json.dumps writes them (Python's separators and
// ensure_ascii): the same bytes a Python worker would store for the same value.
import { pythonJsonStyle } from '../../workers/backends/mongodb';

test.each([
  [{ a: [1, 'b', null], 'c:d': 'e,f' }, '{"a": [1, "b", null], "c:d": "e,f"}'],
  ['héllo — 😀', '"h\\u00e9llo \\u2014 \\ud83d\\ude00"'],
  ['quote " and \\ backslash, tab\t', '"quote \\" and \\\\ backslash, tab\\t"'],
  [[], '[]'],
  [{}, '{}'],
  ['\u007f', '"\\u007f"'],
])('%j -> %s', (value, python) => {
  expect(pythonJsonStyle(JSON.stringify(value))).toBe(python);
});
