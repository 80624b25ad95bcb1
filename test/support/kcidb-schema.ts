// KCIDB I/O schema v5.3, transcribed for validation only: the JSON Schema that
// kcidb_io/schema/v05_03.py of the kernelci/kcidb-io repository holds as Python data (with the
// patterns it takes from v05_00.py and v03_00.py), written out again here with its structure,
// types, patterns, formats, limits, required lists and additionalProperties as the original has
// them, and without its descriptions and examples. Upstream validates with a draft-07 validator and
// its format checker (kcidb_io/schema/abstract.py), so test/kcidb.spec.ts uses ajv in its draft-07
// mode with the formats of ajv-formats. The issue and incident objects are transcribed too, though
// report/kcidb.ts emits none, so that the top level is the original's.

const TEXT = { type: 'string', pattern: '^[^\\0]*$' } as const;
const TIME = { type: 'string', format: 'date-time' } as const;
const URI = { type: 'string', format: 'uri' } as const;
const ORIGIN = { type: 'string', pattern: '^[a-z0-9_]+$' } as const;
const ID = { type: 'string', pattern: '^[a-z0-9_]+:[^\\0]*$' } as const;
const EXCERPT = { type: 'string', maxLength: 16384, pattern: '^[^\\0]*$' } as const;
const MISC = { type: 'object' } as const;
const FILES = { $ref: '#/$defs/resource_list' } as const;

export const KCIDB_V5_3_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'kcidb',
  type: 'object',
  $defs: {
    resource: {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^[^/\\0]+$' }, url: URI },
      additionalProperties: false,
      required: ['name', 'url'],
    },
    resource_list: { type: 'array', items: { $ref: '#/$defs/resource' } },
    status: { type: 'string', enum: ['FAIL', 'ERROR', 'MISS', 'PASS', 'DONE', 'SKIP'] },
    path: { type: 'string', pattern: '^([a-zA-Z0-9_-]+(\\.[a-zA-Z0-9_-]+)*)?$' },
    checkout: {
      type: 'object',
      properties: {
        _timestamp: TIME,
        id: ID,
        origin: ORIGIN,
        tree_name: TEXT,
        git_repository_url: { type: 'string', format: 'uri', pattern: '^https://[^\\0]*$' },
        git_commit_hash: { type: 'string', pattern: '^[0-9a-f]{40}$' },
        git_commit_name: TEXT,
        git_commit_tags: { type: 'array', items: TEXT },
        git_commit_message: TEXT,
        git_repository_branch: TEXT,
        git_repository_branch_tip: { type: 'boolean' },
        patchset_files: FILES,
        patchset_hash: { type: 'string', pattern: '^$|^[0-9a-f]{64}$' },
        message_id: { type: 'string', format: 'email' },
        comment: TEXT,
        start_time: TIME,
        origin_builds_finish_time: TIME,
        origin_tests_finish_time: TIME,
        log_url: URI,
        log_excerpt: EXCERPT,
        valid: { type: 'boolean' },
        misc: MISC,
      },
      additionalProperties: false,
      required: ['id', 'origin'],
    },
    build: {
      type: 'object',
      properties: {
        _timestamp: TIME,
        checkout_id: ID,
        id: ID,
        origin: ORIGIN,
        comment: TEXT,
        start_time: TIME,
        duration: { type: 'number' },
        architecture: { type: 'string', pattern: '^[a-z0-9_]*$' },
        command: TEXT,
        compiler: TEXT,
        input_files: FILES,
        output_files: FILES,
        config_name: TEXT,
        config_url: URI,
        log_url: URI,
        log_excerpt: EXCERPT,
        status: { $ref: '#/$defs/status' },
        misc: MISC,
      },
      additionalProperties: false,
      required: ['checkout_id', 'id', 'origin'],
    },
    test: {
      type: 'object',
      properties: {
        _timestamp: TIME,
        build_id: ID,
        id: ID,
        origin: ORIGIN,
        environment: {
          type: 'object',
          properties: {
            compatible: { type: 'array', items: { type: 'string', pattern: '^[^ \\0]+(,[^ \\0]+)*$' } },
            comment: TEXT,
            misc: MISC,
          },
          additionalProperties: false,
        },
        path: { $ref: '#/$defs/path' },
        comment: TEXT,
        log_url: URI,
        log_excerpt: EXCERPT,
        status: { $ref: '#/$defs/status' },
        number: {
          type: 'object',
          properties: { value: { type: 'number' }, unit: TEXT, prefix: { type: 'string', enum: ['metric', 'binary'] } },
          required: ['value'],
          additionalProperties: false,
        },
        start_time: TIME,
        duration: { type: 'number' },
        input_files: FILES,
        output_files: FILES,
        misc: MISC,
      },
      additionalProperties: false,
      required: ['build_id', 'id', 'origin'],
    },
    issue: {
      type: 'object',
      properties: {
        _timestamp: TIME,
        id: ID,
        version: { type: 'integer', minimum: 0 },
        origin: ORIGIN,
        categories: { type: 'array', items: { $ref: '#/$defs/path' } },
        report_url: URI,
        report_subject: TEXT,
        culprit: {
          type: 'object',
          properties: { code: { type: 'boolean' }, tool: { type: 'boolean' }, harness: { type: 'boolean' } },
          additionalProperties: false,
        },
        comment: TEXT,
        misc: MISC,
      },
      additionalProperties: false,
      required: ['id', 'version', 'origin'],
    },
    incident: {
      type: 'object',
      properties: {
        _timestamp: TIME,
        id: ID,
        origin: ORIGIN,
        issue_id: ID,
        issue_version: { type: 'integer', minimum: 0 },
        build_id: ID,
        test_id: ID,
        present: { type: 'boolean' },
        comment: TEXT,
        misc: MISC,
      },
      additionalProperties: false,
      required: ['id', 'origin', 'issue_id', 'issue_version'],
    },
  },
  properties: {
    version: {
      type: 'object',
      properties: { major: { type: 'integer', const: 5 }, minor: { type: 'integer', minimum: 0, maximum: 3 } },
      additionalProperties: false,
      required: ['major'],
    },
    checkouts: { type: 'array', items: { $ref: '#/$defs/checkout' } },
    builds: { type: 'array', items: { $ref: '#/$defs/build' } },
    tests: { type: 'array', items: { $ref: '#/$defs/test' } },
    issues: { type: 'array', items: { $ref: '#/$defs/issue' } },
    incidents: { type: 'array', items: { $ref: '#/$defs/incident' } },
  },
  additionalProperties: false,
  required: ['version'],
} as const;
