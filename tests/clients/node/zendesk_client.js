// A node-zendesk client for the Zendesk simulator named in the environment (ZD_API: its
// /api/v2 URL, ZD_EMAIL, ZD_TOKEN), and a way to print a script's result for the test.
'use strict';
const zendesk = require('node-zendesk');

function client() {
  return zendesk.createClient({
    username: process.env.ZD_EMAIL,
    token: process.env.ZD_TOKEN,
    // node-zendesk's documented override of https://{subdomain}.zendesk.com/api/v2
    endpointUri: process.env.ZD_API,
    // errors keep node-zendesk's own statusCode and result instead of a flattened message
    throwOriginalException: true,
  });
}

// Move the simulator's clock on (its admin API, not part of the client): jobs finish.
async function advance(seconds) {
  const answer = await fetch(`${process.env.ZD_ADMIN}/clock`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({advance: seconds}),
  });
  if (!answer.ok) throw new Error(`advancing the clock: ${answer.status}`);
}

function run(main) {
  main().then(
    (result) => console.log(JSON.stringify(result)),
    (error) => {
      console.error(error, error && error.result);
      process.exit(1);
    },
  );
}

module.exports = {client, advance, run};
