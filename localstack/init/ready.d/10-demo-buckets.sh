#!/bin/bash
# Runs inside the LocalStack container once it is ready (docker-compose.yml mounts this folder at
# /etc/localstack/init/ready.d). Creates the demo buckets of stage "local" (serverless.yml: params.local.buckets is
# "demo-*") and seeds the source with DEMO_OBJECTS small sample JPEGs under photos/.
# For more or larger images, seed from the host instead (see localstack/README.md):
#   npx s3-image-mover seed --endpoint http://127.0.0.1:4566 --bucket demo-old --objects 10000 --size-kb 200
set -euo pipefail

SOURCE=${DEMO_SOURCE_BUCKET:-demo-old}
DESTINATION=${DEMO_DESTINATION_BUCKET:-demo-new}
COUNT=${DEMO_OBJECTS:-200}
AWS=${AWSLOCAL:-awslocal} # awslocal ships in the LocalStack image: the AWS CLI pointed at LocalStack

for bucket in "$SOURCE" "$DESTINATION"; do
  # Already there after a restart with persistence: keep it.
  $AWS s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || $AWS s3api create-bucket --bucket "$bucket" >/dev/null
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A 32x24 gradient, 714 bytes (encoded with jpeg-js, as src/images/jpeg.ts does).
base64 -d > "$work/sample.jpg" <<'JPEG'
/9j/4AAQSkZJRgABAQAAAQABAAD/2wCEAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxO
UlNSMj5aYVpQYEpRUk8BDg4OExETJhUVJk81LTVPT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P
T09PT//AABEIABgAIAMBEQACEQEDEQH/xAGiAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgsQAAIBAwMCBAMFBQQEAAABfQEC
AwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm
Z2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq
8fLz9PX29/j5+gEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoLEQACAQIEBAMEBwUEBAABAncAAQIDEQQFITEGEkFRB2FxEyIy
gQgUQpGhscEJIzNS8BVictEKFiQ04SXxFxgZGiYnKCkqNTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqCg4SF
hoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2dri4+Tl5ufo6ery8/T19vf4+fr/2gAMAwEA
AhEDEQA/AKCRe1e5OR51OZOkVcc5HfTmTpF7VyTkd9OZOkXtXHOR3U5kCRe1e3OR8TTmTpFXJOR305k6Re1cc5HfTmTpF7VyTkd9
OZAkXtXtzkfE05lhIq45yO+nMnSL2rknI7qcydIvauOcjvpzP//Z
JPEG
mkdir "$work/photos"
for i in $(seq 1 "$COUNT"); do
  cp "$work/sample.jpg" "$work/photos/img-$(printf '%07d' "$i").jpg"
done
# One CLI process for all uploads (the CLI runs them 10 at a time).
$AWS s3 cp "$work/photos" "s3://$SOURCE/photos/" --recursive --content-type image/jpeg --only-show-errors

echo "s3-image-mover demo: uploaded $COUNT JPEGs to s3://$SOURCE/photos/; s3://$DESTINATION is the destination"
