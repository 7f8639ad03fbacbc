// GitHub's own workflow parser (@actions/workflow-parser, what github.com uses to accept or
// refuse a workflow file) on each file given: prints every error, exits 1 if there is any.
//   node --import ./json-modules.mjs check-github-workflows.mjs FILE...
import { readFileSync } from "node:fs";
import {
  NoOperationTraceWriter,
  convertWorkflowTemplate,
  parseWorkflow,
} from "@actions/workflow-parser";

let failed = false;
for (const name of process.argv.slice(2)) {
  const parsed = parseWorkflow(
    { name, content: readFileSync(name, "utf8") },
    new NoOperationTraceWriter(),
  );
  const errors = [...parsed.context.errors.getErrors()];
  if (parsed.value !== undefined) {
    const template = await convertWorkflowTemplate(parsed.context, parsed.value);
    errors.push(...(template.errors ?? []));
  }
  for (const error of errors) {
    failed = true;
    console.log(error.Message ?? error.message ?? JSON.stringify(error));
  }
}
process.exit(failed ? 1 : 0);
