#!/usr/bin/env node
// Validate one Amazon States Language definition, read as JSON from stdin, with asl-validator (pinned in
// package.json). Prints {"version", "valid", "errors": [{"code", "message"}]} as JSON on stdout and exits
// 0 when the definition is valid, 1 when it is not, 2 when the input is not JSON.
// Both checks are on: JSONPath/intrinsic syntax (checkPaths) and the Task Resource ARN shape (checkArn).
"use strict";

const fs = require("fs");
const validator = require("asl-validator");
const { version } = require("asl-validator/package.json");

let definition;
try {
  definition = JSON.parse(fs.readFileSync(0, "utf8"));
} catch (err) {
  process.stderr.write(`asl_validate.js: stdin is not JSON: ${err.message}\n`);
  process.exit(2);
}
const result = validator(definition, { checkPaths: true, checkArn: true });
const errors = result.errors.map((e) => ({ code: e["Error code"], message: e.Message }));
process.stdout.write(JSON.stringify({ version, valid: result.isValid, errors }) + "\n");
process.exit(result.isValid ? 0 : 1);
