//! A bucket in S3 (AWS, MinIO, R2, Ceph or any compatible server), on aws-sdk-s3.
//!
//! Credentials, region and endpoint come from the standard AWS chain (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, profiles, instance roles).
//! Conditional writes use `If-None-Match: *` and `If-Match: <etag>`; both 412 and 409 mean
//! another writer won. The SDK retries throttling and 5xx answers with backoff; every attempt
//! has a timeout. Large files are uploaded in parts streamed from disk, so memory stays
//! bounded whatever their size.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream as SdkStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{
    validate_key, Accept, Bucket, ByteStream, ETag, Error, GetResult, ObjectMeta, Presigned,
    PutMode, Result,
};

/// Files larger than this are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// The size of each part (S3 allows at most 10,000 parts: this covers 160 GiB).
const PART_SIZE: u64 = 16 << 20;
/// The largest object one CopyObject may copy; larger ones are copied in parts.
const MAX_SINGLE_COPY: u64 = 5 << 30;

/// How to reach the bucket.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The bucket's name.
    pub bucket: String,
    /// Address objects as `endpoint/bucket/key` (MinIO and most local servers need it).
    pub path_style: bool,
    /// Overrides `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// Attempts per request (the SDK retries throttling and 5xx with backoff).
    pub max_attempts: u32,
    /// Time one attempt may take before it is abandoned and retried.
    pub attempt_timeout: Duration,
}

impl S3Options {
    /// Defaults for `bucket`: virtual-hosted addressing, 6 attempts of up to 120 s.
    pub fn new(bucket: &str) -> Self {
        S3Options {
            bucket: bucket.to_owned(),
            path_style: false,
            endpoint: None,
            max_attempts: 6,
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Clone)]
/// A bucket on S3 or an S3-compatible server: credentials and region from the standard `AWS_*` variables; conditional writes with `If-None-Match`/`If-Match`.
pub struct S3Bucket {
    client: Client,
    bucket: String,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds credentials: never print it.
        f.debug_struct("S3Bucket")
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl S3Bucket {
    /// Configure a client from the environment.
    pub async fn new(options: S3Options) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(options.max_attempts),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            )
            .load()
            .await;
        let mut config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(options.path_style);
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        S3Bucket {
            client: Client::from_conf(config.build()),
            bucket: options.bucket,
        }
    }

    /// The bucket's name.
    pub fn bucket_name(&self) -> &str {
        &self.bucket
    }
}

/// Map an SDK error to the bucket's error kinds by HTTP status: S3 servers agree on statuses
/// more than on error codes (412 is not even a modelled error of the SDK).
fn map_err<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Error {
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    match (status, code.as_deref()) {
        (Some(404), _) | (_, Some("NoSuchKey")) | (_, Some("NotFound")) => {
            Error::NotFound(key.to_owned())
        }
        (Some(412), _)
        | (Some(409), _)
        | (_, Some("PreconditionFailed"))
        | (_, Some("ConditionalRequestConflict")) => Error::PreconditionFailed(key.to_owned()),
        _ => {
            let message = match (&code, err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                _ => match status {
                    Some(s) => format!("HTTP {s}"),
                    None => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err)),
                },
            };
            Error::Backend {
                key: key.to_owned(),
                message,
            }
        }
    }
}

/// If-Match on a missing key: the object compared against is gone, which the trait reports as
/// a failed precondition on every backend.
fn missing_is_precondition(e: Error, mode: &PutMode) -> Error {
    match (e, mode) {
        (Error::NotFound(k), PutMode::Update(_)) => Error::PreconditionFailed(k),
        (e, _) => e,
    }
}

/// The `If-None-Match` and `If-Match` headers of a write.
fn preconditions(mode: &PutMode) -> (Option<String>, Option<String>) {
    match mode {
        PutMode::Overwrite => (None, None),
        PutMode::Create => (Some("*".to_owned()), None),
        PutMode::Update(tag) => (None, Some(tag.0.clone())),
    }
}

fn body_err(key: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend {
        key: key.to_owned(),
        message: format!("reading the response body: {e}"),
    }
}

/// The whole body of a GET, with its tag.
async fn whole(
    key: &str,
    out: aws_sdk_s3::operation::get_object::GetObjectOutput,
) -> Result<GetResult> {
    let etag = etag_of(key, out.e_tag)?;
    let data = out
        .body
        .collect()
        .await
        .map_err(|e| body_err(key, e))?
        .into_bytes();
    Ok(GetResult { data, etag })
}

fn etag_of(key: &str, tag: Option<String>) -> Result<ETag> {
    tag.map(ETag).ok_or_else(|| Error::Backend {
        key: key.to_owned(),
        message: "the server returned no ETag".into(),
    })
}

impl S3Bucket {
    /// A presigned GET of `key` for `ttl`, answered with `content_disposition` when given.
    async fn presign_download(
        &self,
        key: &str,
        ttl: Duration,
        content_disposition: Option<&str>,
    ) -> Result<Option<Presigned>> {
        validate_key(key)?;
        let config = presigning(key, ttl)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_response_content_disposition(content_disposition.map(str::to_owned))
            .presigned(config)
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(Some(presigned(request, ttl)))
    }
}

#[async_trait]
impl Bucket for S3Bucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        validate_key(key)?;
        let out = self.get_object(key).await?;
        whole(key, out).await
    }

    async fn get_if_changed(&self, key: &str, etag: &ETag) -> Result<Option<GetResult>> {
        validate_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match(&etag.0)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
                return Ok(None)
            }
            Err(e) => return Err(map_err(key, e)),
        };
        whole(key, out).await.map(Some)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        validate_key(key)?;
        if range.end <= range.start {
            return Ok(Bytes::new());
        }
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            // A range starting past the end.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Bytes::new())
            }
            Err(e) => return Err(map_err(key, e)),
        };
        Ok(out
            .body
            .collect()
            .await
            .map_err(|e| body_err(key, e))?
            .into_bytes())
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        validate_key(key)?;
        let out = self.get_object(key).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::io(key, e))?;
        let mut body = out.body;
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| body_err(key, e))?;
            total += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::io(key, e))?;
        }
        file.sync_all().await.map_err(|e| Error::io(key, e))?;
        Ok(total)
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        validate_key(key)?;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(SdkStream::from(data));
        let (if_none_match, if_match) = preconditions(&mode);
        req = req.set_if_none_match(if_none_match).set_if_match(if_match);
        match req.send().await {
            Ok(out) => etag_of(key, out.e_tag),
            Err(e) => Err(missing_is_precondition(map_err(key, e), &mode)),
        }
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        validate_key(key)?;
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::io(key, e))?
            .len();
        if size <= MULTIPART_THRESHOLD {
            let body = SdkStream::from_path(path)
                .await
                .map_err(|e| body_err(key, e))?;
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body);
            let (if_none_match, if_match) = preconditions(&mode);
            req = req.set_if_none_match(if_none_match).set_if_match(if_match);
            return match req.send().await {
                Ok(out) => etag_of(key, out.e_tag),
                Err(e) => Err(missing_is_precondition(map_err(key, e), &mode)),
            };
        }
        if let PutMode::Create = mode {
            // Some servers ignore preconditions on CompleteMultipartUpload: check first.
            // Callers only use Create for content-addressed objects, where a lost race
            // writes the same bytes.
            self.absent(key).await?;
        }
        let upload_id = self.create_upload(key).await?;
        let result = self.upload_parts(key, path, size, &upload_id, &mode).await;
        if result.is_err() {
            self.abort_upload(key, &upload_id).await;
        }
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map_err(prefix, e))?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    out.push(ObjectMeta {
                        key: key.to_owned(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        last_modified: obj.last_modified().map_or(0, |t| t.secs()),
                    });
                }
            }
            match (page.is_truncated(), page.next_continuation_token) {
                (Some(true), Some(next)) => token = Some(next),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map_err(prefix, e))?;
            for common in page.common_prefixes() {
                let folder = common.prefix().and_then(|p| p.strip_prefix(prefix));
                if let Some(name) = folder.map(|f| f.trim_end_matches('/')) {
                    out.push(name.to_owned());
                }
            }
            match (page.is_truncated(), page.next_continuation_token) {
                (Some(true), Some(next)) => token = Some(next),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for chunk in keys.chunks(1000) {
            let mut objects = Vec::with_capacity(chunk.len());
            for key in chunk {
                validate_key(key)?;
                let id =
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(|e| Error::Backend {
                            key: key.clone(),
                            message: e.to_string(),
                        })?;
                objects.push(id);
            }
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::Backend {
                    key: chunk[0].clone(),
                    message: e.to_string(),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| map_err(&chunk[0], e))?;
            if let Some(failed) = out.errors().first() {
                return Err(Error::Backend {
                    key: failed.key().unwrap_or_default().to_owned(),
                    message: failed.message().unwrap_or("delete failed").to_owned(),
                });
            }
        }
        Ok(())
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        validate_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: out.last_modified().map_or(0, |t| t.secs()),
        })
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let out = self.get_object(key).await?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn put_stream(
        &self,
        key: &str,
        mut data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        validate_key(key)?;
        let mut part = read_part(&mut data, key).await?;
        if (part.len() as u64) < PART_SIZE {
            // The whole stream fits one part: one PUT, once it was accepted.
            if !accept() {
                return Ok(None);
            }
            return self.put(key, Bytes::from(part), mode).await.map(Some);
        }
        if let PutMode::Create = mode {
            // Some servers ignore preconditions on CompleteMultipartUpload: check first.
            // Callers only use Create for content-addressed objects.
            self.absent(key).await?;
        }
        let upload_id = self.create_upload(key).await?;
        let result = async {
            let mut parts = Vec::new();
            let mut number = 1i32;
            loop {
                if part.is_empty() {
                    break;
                }
                let body = SdkStream::from(std::mem::take(&mut part));
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| map_err(key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .build(),
                );
                number += 1;
                part = read_part(&mut data, key).await?;
            }
            if !accept() {
                return Ok(None);
            }
            self.complete_upload(key, &upload_id, parts, &mode)
                .await
                .map(Some)
        }
        .await;
        if !matches!(result, Ok(Some(_))) {
            self.abort_upload(key, &upload_id).await;
        }
        result
    }

    fn put_stream_memory(&self) -> u64 {
        PART_SIZE
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        validate_key(from)?;
        validate_key(to)?;
        let size = self.head(from).await?.size;
        if let PutMode::Create = mode {
            self.absent(to).await?;
        }
        let source = format!("{}/{}", self.bucket, encode_key(from));
        if size <= MAX_SINGLE_COPY {
            let out = self
                .client
                .copy_object()
                .bucket(&self.bucket)
                .key(to)
                .copy_source(&source)
                .send()
                .await
                .map_err(|e| map_err(to, e))?;
            return etag_of(to, out.copy_object_result.and_then(|r| r.e_tag));
        }
        let upload_id = self.create_upload(to).await?;
        let result = async {
            let mut parts = Vec::new();
            let mut offset = 0u64;
            let mut number = 1i32;
            // Parts of 1 GiB: at most 10,000 parts covers any object S3 holds.
            let part_size = 1u64 << 30;
            while offset < size {
                let end = (offset + part_size).min(size) - 1;
                let out = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(&source)
                    .copy_source_range(format!("bytes={offset}-{end}"))
                    .send()
                    .await
                    .map_err(|e| map_err(to, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.copy_part_result.and_then(|r| r.e_tag))
                        .build(),
                );
                offset = end + 1;
                number += 1;
            }
            self.complete_upload(to, &upload_id, parts, &mode).await
        }
        .await;
        if result.is_err() {
            self.abort_upload(to, &upload_id).await;
        }
        result
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<Presigned>> {
        self.presign_download(key, ttl, None).await
    }

    async fn presign_get_as(
        &self,
        key: &str,
        ttl: Duration,
        content_disposition: &str,
    ) -> Result<Option<Presigned>> {
        self.presign_download(key, ttl, Some(content_disposition))
            .await
    }

    async fn presign_put(&self, key: &str, ttl: Duration, size: u64) -> Result<Option<Presigned>> {
        validate_key(key)?;
        let config = presigning(key, ttl)?;
        let length = i64::try_from(size).map_err(|_| Error::Backend {
            key: key.to_owned(),
            message: "object too large".into(),
        })?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(length)
            .presigned(config)
            .await
            .map_err(|e| map_err(key, e))?;
        Ok(Some(presigned(request, ttl)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match map_err(key, e) {
                Error::NotFound(_) => Ok(()),
                e => Err(e),
            },
        }
    }
}

/// Read up to one part from `data` (less only at its end).
async fn read_part(data: &mut ByteStream, key: &str) -> Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut part = Vec::with_capacity(PART_SIZE as usize);
    let mut limited = data.take(PART_SIZE);
    limited
        .read_to_end(&mut part)
        .await
        .map_err(|e| Error::io(key, e))?;
    Ok(part)
}

/// A key as the `x-amz-copy-source` header wants it: path segments percent-encoded.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn presigning(key: &str, ttl: Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(|e| Error::Backend {
        key: key.to_owned(),
        message: format!("cannot presign: {e}"),
    })
}

fn presigned(request: aws_sdk_s3::presigning::PresignedRequest, ttl: Duration) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        // The body's length is the client's to send (the signature covers it).
        headers: request
            .headers()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        expires_in: ttl,
    }
}

impl S3Bucket {
    /// Fail with `PreconditionFailed` if `key` exists.
    async fn absent(&self, key: &str) -> Result<()> {
        match self.head(key).await {
            Ok(_) => Err(Error::PreconditionFailed(key.to_owned())),
            Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_upload(&self, key: &str) -> Result<String> {
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))?;
        upload.upload_id.ok_or_else(|| Error::Backend {
            key: key.to_owned(),
            message: "no upload id".into(),
        })
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        mode: &PutMode,
    ) -> Result<ETag> {
        let (if_none_match, if_match) = preconditions(mode);
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| missing_is_precondition(map_err(key, e), mode))?;
        etag_of(key, out.e_tag)
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }

    /// A whole-object GET, its body not yet read.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        validate_key(key)?;
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_err(key, e))
    }

    async fn upload_parts(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        upload_id: &str,
        mode: &PutMode,
    ) -> Result<ETag> {
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let len = PART_SIZE.min(size - offset);
            let body = SdkStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| body_err(key, e))?;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| map_err(key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag)
                    .build(),
            );
            offset += len;
            number += 1;
        }
        self.complete_upload(key, upload_id, parts, mode).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The bucket contract against a real S3 server, when the test script started one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn meets_the_contract_on_a_real_server() -> Result<()> {
        let Ok(endpoint) = std::env::var("ARTIFACT_GIT_TEST_S3_ENDPOINT") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the S3 tests: ARTIFACT_GIT_TEST_S3_ENDPOINT is not set"
            );
            eprintln!("skipping: no S3 test server (ARTIFACT_GIT_TEST_S3_ENDPOINT)");
            return Ok(());
        };
        let name = format!("contract-{}", std::process::id());
        let mut options = S3Options::new(&name);
        options.path_style = true;
        options.endpoint = Some(endpoint);
        let bucket = S3Bucket::new(options).await;
        bucket
            .client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(|e| map_err(&name, e))?;
        // Multipart with a precondition: a file above the threshold.
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..MULTIPART_THRESHOLD + 5_000_000)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&big, &data).map_err(|e| Error::io("tmp", e))?;
        bucket.put_file("big/pack", &big, PutMode::Create).await?;
        assert!(matches!(
            bucket.put_file("big/pack", &big, PutMode::Create).await,
            Err(Error::PreconditionFailed(_))
        ));
        assert_eq!(
            bucket.get_range("big/pack", 70_000_000..70_000_010).await?,
            Bytes::copy_from_slice(&data[70_000_000..70_000_010])
        );
        let back = dir.path().join("back");
        assert_eq!(
            bucket.get_to_file("big/pack", &back).await?,
            data.len() as u64
        );
        assert!(std::fs::read(&back).map_err(|e| Error::io("tmp", e))? == data);
        bucket.delete("big/pack").await?;
        super::super::contract::check(Arc::new(bucket)).await
    }
}
