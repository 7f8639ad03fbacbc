// Loaded with `node --import`: GitHub's workflow parser imports its JSON schemas without
// `with { type: "json" }` (it is built for bundlers), which Node refuses; read them as JSON.
import { register } from "node:module";

// This same file also serves as the loader hooks it registers.
if (!import.meta.url.endsWith("?hooks")) {
  register(`${import.meta.url}?hooks`);
}

export async function load(url, context, nextLoad) {
  if (url.endsWith(".json")) {
    const { readFile } = await import("node:fs/promises");
    return { format: "json", source: await readFile(new URL(url)), shortCircuit: true };
  }
  return nextLoad(url, context);
}
