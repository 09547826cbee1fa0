# shellcheck shell=bash disable=SC2034 # read by the scripts that source this file
# GENERATED from config/manifest.ts (manifestShellFacts): do not edit. To regenerate:
#   UPDATE_MANIFEST_SH=1 npx vitest run test/unit/backup-manifest.test.ts
# The backup manifest's facts the step scripts read as data rather than repeat.

# format_version backup.sh writes and restore.sh accepts.
MANIFEST_FORMAT_VERSION=1
# Versions backup.sh accepts (they become part of the file name).
BACKUP_VERSION_RE='^[A-Za-z0-9][A-Za-z0-9._+-]*$'
# "<field> <json type>" every manifest must have (json_typeof's names).
MANIFEST_REQUIRED_FIELDS=(
  "format_version number"
  "file string"
  "bytes number"
  "sha256 string"
  "from string"
  "to string"
  "created_at string"
  "database string"
  "server_version string"
  "pg_dump_version string"
  "test_restore boolean"
  "tables number"
  "rows number"
  "row_counts object"
)
# "<field> <json type>" a manifest may leave out, of that type when present.
MANIFEST_OPTIONAL_FIELDS=(
  "schema_restore boolean"
  "compress_level number"
)
