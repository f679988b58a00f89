//! The object store, through aws-sdk-s3 only: the embedded server and any external S3
//! (Ceph radosgw, MinIO, AWS) are the same code path.

use std::fmt;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde::{Deserialize, Serialize};

/// Where recordings are stored. With `embedded` (the default), `kefu` runs its own
/// S3-compatible server on loopback and `endpoint`/keys are filled in at start.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub embedded: bool,
    /// Port of the embedded server on 127.0.0.1 (0 picks a free one).
    pub embedded_port: u16,
    /// External endpoint, e.g. `http://127.0.0.1:7480` (ignored when embedded).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// `http://host/bucket/key` rather than `http://bucket.host/key`.
    pub path_style: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            embedded: true,
            embedded_port: 0,
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: "kefu-recordings".into(),
            access_key: String::new(),
            secret_key: String::new(),
            path_style: true,
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("embedded", &self.embedded)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// A store operation that failed; the text is for logs and admins (no secrets in it).
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct StoreError {
    pub op: &'static str,
    pub message: String,
    /// The object or upload does not exist (404, NoSuchKey, NoSuchUpload).
    pub not_found: bool,
}

fn store_err<E>(op: &'static str) -> impl Fn(aws_sdk_s3::error::SdkError<E>) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let (code, msg) = match e.as_service_error() {
            Some(se) => (
                se.code().unwrap_or("").to_owned(),
                se.message().unwrap_or("").to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let not_found = status == Some(404) || code == "NoSuchKey" || code == "NoSuchUpload";
        let message = match (status, code.is_empty()) {
            (Some(s), false) => format!("HTTP {s} {code} {msg}"),
            (Some(s), true) => format!("HTTP {s}"),
            (None, _) => format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)),
        };
        StoreError {
            op,
            message,
            not_found,
        }
    }
}

/// A ranged read: the body plus what HTTP needs to answer with it.
#[derive(Debug)]
pub struct ObjectRead {
    pub body: ByteStream,
    pub content_length: u64,
    pub content_range: Option<String>,
    pub total_size: Option<u64>,
}

/// One bucket of an S3-compatible store.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
}

impl ObjectStore {
    pub fn new(cfg: &StorageConfig) -> Self {
        let creds = Credentials::new(&cfg.access_key, &cfg.secret_key, None, None, "kefu-config");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&cfg.endpoint)
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(creds)
            .force_path_style(cfg.path_style)
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = store_err("create bucket")(e);
                if err.message.contains("BucketAlreadyOwnedByYou")
                    || err.message.contains("BucketAlreadyExists")
                {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    pub async fn create_upload(&self, key: &str, content_type: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(store_err("create multipart upload"))?;
        out.upload_id().map(str::to_owned).ok_or(StoreError {
            op: "create multipart upload",
            message: "no upload id in the answer".into(),
            not_found: false,
        })
    }

    /// Uploads part `number` (from 1); returns its ETag.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(store_err("upload part"))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), StoreError> {
        let parts = parts
            .iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(store_err("complete multipart upload"))?;
        Ok(())
    }

    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(store_err("abort multipart upload"))?;
        Ok(())
    }

    /// Stores a small object in one request.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(store_err("put object"))?;
        Ok(())
    }

    /// Deletes an object (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(store_err("delete object"))?;
        Ok(())
    }

    /// Reads a whole small object into memory.
    pub async fn read_all(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let read = self.read(key, None).await?;
        let data = read.body.collect().await.map_err(|e| StoreError {
            op: "read object body",
            message: e.to_string(),
            not_found: false,
        })?;
        Ok(data.into_bytes().to_vec())
    }

    /// Reads `range` (an HTTP `Range` value such as `bytes=0-99`) or the whole object.
    pub async fn read(&self, key: &str, range: Option<&str>) -> Result<ObjectRead, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(str::to_owned))
            .send()
            .await
            .map_err(store_err("get object"))?;
        let content_range = out.content_range().map(str::to_owned);
        let total_size = content_range
            .as_deref()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse().ok());
        Ok(ObjectRead {
            content_length: out.content_length().unwrap_or(0).max(0) as u64,
            content_range,
            total_size,
            body: out.body,
        })
    }

    /// The object's size, or `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => {
                let err = store_err("head object")(e);
                if err.not_found { Ok(None) } else { Err(err) }
            }
        }
    }
}
