#!/usr/bin/env node
// Keep this file tiny: `tollgate --version` must answer fast, so nothing heavy is imported here.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
