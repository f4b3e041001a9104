// The GraphQL-over-HTTP reference audit (graphql-http's serverAudits)
// against a running server: every MUST must pass and no SHOULD may warn.
// Usage: node audit.mjs http://127.0.0.1:8080/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}
let passed = 0;
let failed = 0;
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  if (result.status === 'ok') {
    passed += 1;
    continue;
  }
  failed += 1;
  const body = result.response ? await result.response.text().catch(() => '') : '';
  console.log(`${result.status === 'warn' ? 'WARN' : 'FAIL'} ${audit.name}: ${result.reason}${body ? `\n    ${body.slice(0, 300)}` : ''}`);
}
console.log(`graphql-http audit: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
