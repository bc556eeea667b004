// Regenerates docs/config.schema.json and docs/configuration.md from the zod schema.
import { writeFile } from 'node:fs/promises';
import { configJsonSchema, configMarkdown } from '../client/config-docs.ts';

await writeFile(
  new URL('../docs/config.schema.json', import.meta.url),
  JSON.stringify(configJsonSchema(), null, 2) + '\n',
);
await writeFile(new URL('../docs/configuration.md', import.meta.url), configMarkdown());
console.log('wrote docs/config.schema.json and docs/configuration.md');
