// Workflow modules are preloaded once into the worker's shared V8 context (workers/bundle.ts): module-level state
// would be shared by every workflow the worker runs, so a workflow's decisions could depend on another's.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const dir = path.join(__dirname, '../../workflows');

/** Top-level `let`/`var` declarations of a source file: state every workflow in the worker would share. */
function moduleLevelVariables(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    // `var` has none of the block-scoped flags; `const` and `using` cannot be reassigned.
    const flags = statement.declarationList.flags;
    if (flags & (ts.NodeFlags.Const | ts.NodeFlags.Using | ts.NodeFlags.AwaitUsing)) continue;
    for (const d of statement.declarationList.declarations) found.push(`${file}: ${d.name.getText(source)}`);
  }
  return found;
}

it('workflow modules declare no module-level let or var', () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
  expect(files).toContain('reminders.ts');
  expect(files.flatMap((f) => moduleLevelVariables(f, fs.readFileSync(path.join(dir, f), 'utf8')))).toEqual([]);
});

it('finds a module-level let or var when there is one', () => {
  expect(moduleLevelVariables('x.ts', 'export let seen = 0;\nvar other = 1;\nconst fine = 2;\nfunction f() { let inner = 3; return inner; }')).toEqual(['x.ts: seen', 'x.ts: other']);
});
