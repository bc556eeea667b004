// Saves the event history of a finished workflow as JSON, for replay tests:
//   node --import tsx scripts/capture-history.ts --config FILE --workflow-id ID --out test/history/NAME.json
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { loadConfig } from '../client/config-file.ts';
import { connectClient } from '../client/temporal.ts';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

const { values } = parseArgs({
  options: { config: { type: 'string' }, 'workflow-id': { type: 'string' }, out: { type: 'string' } },
});
if (!values.config || !values['workflow-id'] || !values.out)
  throw new Error('usage: --config FILE --workflow-id ID --out FILE');
const client = await connectClient(await loadConfig(values.config));
const history = await client.workflow.getHandle(values['workflow-id']).fetchHistory();
await writeFile(values.out, historyToJSON(history) + '\n');
console.log(`wrote ${values.out} (${history.events?.length} events)`);
await client.connection.close();
