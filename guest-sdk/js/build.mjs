#!/usr/bin/env node
// Builds a JavaScript agent project into a component:
//
//   node build.mjs <project dir> [-o out.wasm]      (npx agent-host-js <dir>)
//
// The project's package.json names the entry module (`main`, default
// `agent.js`), whose default export is `defineAgent({...})`. Steps:
//
// 1. Stage the project's modules (everything but node_modules/, dist/ and
//    dot-directories) in a temporary directory, with this SDK beside them.
//    StarlingMonkey loads modules by path only, so the staged modules'
//    imports of "@agent-host/sdk" are rewritten to the staged SDK's
//    relative path (es-module-lexer finds them exactly; nothing else is
//    touched).
// 2. Write an entry module that exports the world's `onRequest` and `run`
//    from the project's default export, and componentize it with
//    componentize-js against the SDK's WIT, world `agent`.
// 3. Append the version markers agent-host reads (the same custom sections
//    the Rust SDK's `export_agent!` embeds): `agent-host:sdk-version` = the
//    WIT package version, `agent-host:guest-version` = the project's
//    package.json version.
// 4. Write the component (default `<dir>/dist/<package name>.wasm`) and
//    print its path as the last line of stdout (agent-host reads it).

import { mkdtemp, readFile, writeFile, readdir, mkdir, rm, copyFile, stat, rename } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, relative, dirname, extname, basename, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { init, parse } from "es-module-lexer";
import { componentize } from "@bytecodealliance/componentize-js";

const SDK_PACKAGE = "@agent-host/sdk";
const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const SKIPPED = new Set(["node_modules", "dist"]);

/** The SDK's WIT: shipped in the package, or the repository's when run from a checkout. */
function witDir() {
  for (const dir of [join(SDK_DIR, "wit"), join(SDK_DIR, "..", "..", "wit")]) {
    if (existsSync(join(dir, "agent.wit"))) return dir;
  }
  throw new Error(`no WIT beside the SDK (looked in ${SDK_DIR}/wit and the repository's wit/)`);
}

/** The version of the `agent-host:agent` package in `wit/agent.wit`. */
async function witVersion(wit) {
  const text = await readFile(join(wit, "agent.wit"), "utf8");
  const m = /^package agent-host:agent@([0-9A-Za-z.+-]+);/m.exec(text);
  if (!m) throw new Error(`${wit}/agent.wit declares no agent-host:agent package version`);
  return m[1];
}

async function copyTree(from, to) {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || SKIPPED.has(entry.name)) continue;
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) await copyTree(src, dst);
    else if (entry.isFile()) await copyFile(src, dst);
  }
}

async function* modules(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* modules(path);
    else if ([".js", ".mjs"].includes(extname(entry.name))) yield path;
  }
}

/** Rewrites `import ... from "@agent-host/sdk"` in `file` to the staged SDK. */
async function linkSdk(file, sdkIndex) {
  const source = await readFile(file, "utf8");
  const [imports] = parse(source, file);
  let target = relative(dirname(file), sdkIndex).split(sep).join("/");
  if (!target.startsWith(".")) target = `./${target}`;
  let out = "";
  let last = 0;
  for (const imp of imports) {
    if (imp.n !== SDK_PACKAGE || imp.s < 0) continue;
    out += source.slice(last, imp.s) + target;
    last = imp.e;
  }
  if (last > 0) await writeFile(file, out + source.slice(last));
}

/** A WebAssembly custom section: id 0, LEB128 size, LEB128-prefixed name, payload. */
function customSection(name, payload) {
  const leb = (n) => {
    const bytes = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n !== 0) byte |= 0x80;
      bytes.push(byte);
    } while (n !== 0);
    return bytes;
  };
  const nameBytes = new TextEncoder().encode(name);
  const body = [...leb(nameBytes.length), ...nameBytes, ...new TextEncoder().encode(payload)];
  return Uint8Array.from([0, ...leb(body.length), ...body]);
}

function usage(message) {
  console.error(`${message}\nusage: node build.mjs <project dir> [-o out.wasm]`);
  process.exit(2);
}

async function main(argv) {
  let dir;
  let out;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-o" || argv[i] === "--out") out = argv[++i];
    else if (argv[i] === "-h" || argv[i] === "--help") usage("Builds a JavaScript agent project into a component.");
    else if (dir === undefined) dir = argv[i];
    else usage(`unexpected argument ${argv[i]}`);
  }
  dir = resolve(dir ?? ".");
  const manifestPath = join(dir, "package.json");
  if (!existsSync(manifestPath)) usage(`${dir} has no package.json`);
  const manifest = JSON.parse(await readFile(manifestPath, "utf8"));
  const main = manifest.main ?? "agent.js";
  if (!existsSync(join(dir, main))) {
    throw new Error(`${manifestPath} names the entry module ${main}, which does not exist`);
  }
  const name = basename(String(manifest.name ?? basename(dir)));
  out = resolve(out ?? join(dir, "dist", `${name}.wasm`));

  const wit = witDir();
  const version = await witVersion(wit);
  const stage = await mkdtemp(join(tmpdir(), "agent-host-js-"));
  try {
    await init;
    const app = join(stage, "app");
    await copyTree(dir, app);
    const sdkIndex = join(stage, "sdk", "index.js");
    await mkdir(dirname(sdkIndex), { recursive: true });
    await copyFile(join(SDK_DIR, "index.js"), sdkIndex);
    for await (const file of modules(app)) await linkSdk(file, sdkIndex);
    const entry = join(stage, "entry.js");
    const mainPath = `./app/${main.split(sep).join("/").replace(/^\.\//, "")}`;
    await writeFile(
      entry,
      [
        `import agent from ${JSON.stringify(mainPath)};`,
        `if (!agent || typeof agent.run !== "function") {`,
        `  throw new TypeError(${JSON.stringify(`${main} must \`export default defineAgent({ run })\``)});`,
        `}`,
        `export function onRequest(request) { return agent.onRequest(request); }`,
        `export function run() { return agent.run(); }`,
        ``,
      ].join("\n"),
    );
    const { component } = await componentize({ sourcePath: entry, witPath: wit, worldName: "agent" });
    const marked = Buffer.concat([
      Buffer.from(component),
      customSection("agent-host:sdk-version", version),
      customSection("agent-host:guest-version", String(manifest.version ?? "0.0.0")),
    ]);
    await mkdir(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    await writeFile(tmp, marked);
    await rename(tmp, out);
    const { size } = await stat(out);
    console.error(`built ${out} (${(size / 1048576).toFixed(1)} MiB, WIT ${version})`);
    console.log(out);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`error: ${e?.message ?? e}`);
  process.exit(1);
});
