// Compile contracts/StableToken.sol with solc-js against OpenZeppelin's sources
// (both pinned in package-lock.json) into build/StableToken.json: abi and bytecode.
// Run once at set-up time; nothing here touches the network.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const source = fs.readFileSync(path.join(here, "contracts", "StableToken.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "StableToken.sol": { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

function findImports(importPath) {
  const full = path.join(here, "node_modules", importPath);
  if (!fs.existsSync(full)) return { error: `not found: ${importPath}` };
  return { contents: fs.readFileSync(full, "utf8") };
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts["StableToken.sol"]["StableToken"];
const out = path.join(here, "build");
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(
  path.join(out, "StableToken.json"),
  JSON.stringify({ contractName: "StableToken", compiler: solc.version(), abi: contract.abi,
                   bytecode: "0x" + contract.evm.bytecode.object }, null, 1),
);
// The 18-decimal token: OpenZeppelin's own compiled ERC20PresetFixedSupply artifact.
const preset = require("@openzeppelin/contracts/build/contracts/ERC20PresetFixedSupply.json");
fs.writeFileSync(
  path.join(out, "ERC20PresetFixedSupply.json"),
  JSON.stringify({ contractName: preset.contractName, abi: preset.abi, bytecode: preset.bytecode }, null, 1),
);
console.log(`compiled StableToken with solc ${solc.version()}`);
