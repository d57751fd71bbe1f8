#!/bin/sh
# Create the bucket artifact-git stores repositories in (idempotent).
set -eu
mc alias set local "$MINIO_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$BUCKET"
echo "bucket $BUCKET ready"
