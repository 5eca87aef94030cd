"""The media types of augsvc's wire formats (the SDK holds the same strings; a parity
test keeps them equal)."""

SAFETENSORS = "application/x-safetensors"
STREAM = "application/x-augsvc-stream"
ZIP = "application/zip"
PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MULTIPART = "multipart/form-data"
