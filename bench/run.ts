/** `npm run bench -- NAME [NAME...]`: runs bench/NAME.ts's run() for each name (all when none given). */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : available;
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`bench: unknown benchmark "${name}" (available: ${available.join(', ')})`);
    process.exit(2);
  }
}
for (const name of names) {
  console.log(`\n== bench ${name} ==`);
  const mod = (await import(`./${name}.js`)) as { run(): Promise<void> };
  await mod.run();
}
