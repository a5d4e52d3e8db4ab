//! The registry adapter and the image strategies end to end against a real registry
//! (`docker-registry`, the CNCF distribution server, Debian package `docker-registry`)
//! started on 127.0.0.1 by each test under `timeout`, with images pushed by the test
//! itself through the OCI API (blob uploads, Docker v2 and OCI manifests, indexes).
//!
//! distribution 2.8 ignores `n`/`last` on `tags/list` and offers only htpasswd (basic)
//! or a token service it does not ship, so the `Link` pagination and the bearer-token
//! flow are tested against a small HTTP stub on 127.0.0.1 that issues the challenge,
//! serves the token and checks it.
#![cfg(feature = "registry")]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitops_core::image::{BuildTime, Current, Detection, Policy, Strategy, Tag, detect};
use gitops_core::registry::{
    Credentials, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ManifestKind, OCI_INDEX, OCI_MANIFEST,
    Platform, RegistryClient, RegistryConfig, RegistryError, sha256_digest,
};

/// A `docker-registry serve` on a free loopback port, stopped on drop (and by
/// `timeout` after five minutes whatever happens).
struct Registry {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

fn registry_binary() -> PathBuf {
    for p in ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "docker-registry not found: install the Debian package `docker-registry` (scripts/test.sh does)"
    );
}

impl Registry {
    /// Starts a registry; `htpasswd` (user, password) turns on basic auth.
    async fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, password)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (Debian package apache2-utils) makes the bcrypt password file");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("timeout")
            .arg("300")
            .arg(registry_binary())
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry under timeout");
        let url = format!("http://127.0.0.1:{port}");
        let reg = Registry {
            child,
            url,
            _dir: dir,
        };
        let client = RegistryClient::new(RegistryConfig::new(&reg.url)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.ping().await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "registry did not answer /v2/ within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reg
    }

    fn client(&self, page_size: Option<u32>, creds: Option<(&str, &str)>) -> RegistryClient {
        let mut c = RegistryConfig::new(&self.url);
        c.page_size = page_size;
        c.timeout = Duration::from_secs(10);
        c.credentials = creds.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        });
        RegistryClient::new(c).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // TERM to `timeout`, which passes it on to the registry.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Pushes through the OCI distribution API with a plain HTTP client.
struct Pusher {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
}

struct Pushed {
    digest: String,
    config_digest: String,
    bytes: Vec<u8>,
}

impl Pusher {
    fn new(base: &str, auth: Option<(&str, &str)>) -> Pusher {
        Pusher {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: base.to_string(),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    fn req(&self, m: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(m, url);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    /// POST an upload session, then PUT the bytes with their digest.
    async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "upload session");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let mut url = reqwest::Url::parse(&self.base)
            .unwrap()
            .join(&location)
            .unwrap();
        url.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .req(reqwest::Method::PUT, url.as_str())
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "blob upload");
        digest
    }

    async fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
            )
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 201, "manifest {repo}:{reference}: {text}");
        let digest = digest.expect("Docker-Content-Digest on PUT");
        assert_eq!(digest, sha256_digest(body));
        digest
    }

    /// An image (config with `created` and one layer) as a Docker v2 or OCI manifest,
    /// pushed under `reference` (a tag, or its own digest when `None`).
    async fn image(
        &self,
        repo: &str,
        reference: Option<&str>,
        created: &str,
        arch: &str,
        oci: bool,
    ) -> Pushed {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","created":"{created}","config":{{}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let layer = format!("layer of {repo} built {created} for {arch}");
        let config_digest = self.blob(repo, config.as_bytes()).await;
        let layer_digest = self.blob(repo, layer.as_bytes()).await;
        let (mt, cmt, lmt) = if oci {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{cmt}","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"{lmt}","size":{},"digest":"{layer_digest}"}}]}}"#,
            config.len(),
            layer.len()
        );
        let digest = sha256_digest(body.as_bytes());
        let reference = reference.unwrap_or(&digest).to_string();
        let pushed = self.manifest(repo, &reference, mt, body.as_bytes()).await;
        assert_eq!(pushed, digest);
        Pushed {
            digest,
            config_digest,
            bytes: body.into_bytes(),
        }
    }

    /// A multi-platform index (OCI) or manifest list (Docker) over `children`.
    async fn index(
        &self,
        repo: &str,
        tag: &str,
        children: &[(&Pushed, &str)],
        oci: bool,
    ) -> String {
        let (mt, child_mt) = if oci {
            (OCI_INDEX, OCI_MANIFEST)
        } else {
            (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
        };
        let entries: Vec<String> = children
            .iter()
            .map(|(p, arch)| {
                format!(
                    r#"{{"mediaType":"{child_mt}","size":{},"digest":"{}","platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                    p.bytes.len(),
                    p.digest
                )
            })
            .collect();
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{}]}}"#,
            entries.join(",")
        );
        self.manifest(repo, tag, mt, body.as_bytes()).await
    }
}

fn time(s: &str) -> BuildTime {
    BuildTime::parse_rfc3339(s).unwrap()
}

fn names(tags: &[Tag]) -> Vec<String> {
    let mut v: Vec<String> = tags.iter().map(|t| t.name.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn tags_digests_and_every_strategy_against_a_real_registry() {
    let reg = Registry::start(None).await;
    let push = Pusher::new(&reg.url, None);
    let repo = "shop/web";
    for (tag, created) in [
        ("1.0.0", "2026-01-01T00:00:00Z"),
        ("1.1.0", "2026-01-02T00:00:00Z"),
        ("v1.2.0", "2026-01-03T00:00:00Z"),
        ("1.3.0-rc.1", "2026-01-04T00:00:00Z"),
        ("2.0.0", "2026-01-05T00:00:00Z"),
        ("build-a", "2026-03-01T00:00:00.250Z"),
        ("build-b", "2026-03-03T10:00:00+02:00"),
        ("build-c", "2026-03-02T00:00:00Z"),
    ] {
        push.image(repo, Some(tag), created, "amd64", false).await;
    }
    let first_latest = push
        .image(repo, Some("latest"), "2026-04-01T00:00:00Z", "amd64", false)
        .await;

    // Listing with a page size of 2 (this registry answers with one page anyway).
    let client = reg.client(Some(2), None);
    let mut listed = client.tags(repo).await.unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            "1.0.0",
            "1.1.0",
            "1.3.0-rc.1",
            "2.0.0",
            "build-a",
            "build-b",
            "build-c",
            "latest",
            "v1.2.0"
        ]
    );

    // semver: highest in range, v prefix, pre-releases on request, filters.
    let semver = |c: &str| Policy::new(Strategy::parse("semver", c).unwrap());
    let current = Current {
        tag: Some("1.0.0".into()),
        digest: None,
    };
    for (policy, want) in [
        (semver("^1.0"), "v1.2.0"),
        (semver("1.x-0"), "1.3.0-rc.1"),
        (semver(">=1.0 <2.0").ignore_tags(["v*"]).unwrap(), "1.1.0"),
        (semver(""), "2.0.0"),
        (semver("~1.1 || ~1.0"), "1.1.0"),
    ] {
        let tags = client.tags_for(repo, &policy, &[]).await.unwrap();
        assert!(
            tags.iter()
                .all(|t| t.created.is_none() && t.digest.is_none())
        );
        match detect(&policy, &current, &tags) {
            Detection::Update(u) => {
                assert_eq!(u.new_tag, want, "{:?}", policy.strategy);
                assert_eq!(u.old_tag.as_deref(), Some("1.0.0"));
            }
            other => panic!("{:?}: {other:?}", policy.strategy),
        }
    }
    assert_eq!(
        detect(
            &semver("~1.0"),
            &current,
            &client.tags_for(repo, &semver("~1.0"), &[]).await.unwrap()
        ),
        Detection::UpToDate {
            tag: "1.0.0".into()
        }
    );

    // newest-build: build times read from the image configs.
    let newest = Policy::new(Strategy::parse("newest-build", "").unwrap())
        .allow_tags("regexp:^build-")
        .unwrap();
    let tags = client.tags_for(repo, &newest, &[]).await.unwrap();
    assert_eq!(names(&tags), ["build-a", "build-b", "build-c"]);
    let a = tags.iter().find(|t| t.name == "build-a").unwrap();
    assert_eq!(a.created, Some(time("2026-03-01T00:00:00.25Z")));
    assert!(
        a.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(newest.candidate(&tags).unwrap().name, "build-b");

    // alphabetical among the same tags.
    let alpha = Policy::new(Strategy::parse("alphabetical", "").unwrap())
        .allow_tags("regexp:^build-")
        .unwrap();
    let tags = client.tags_for(repo, &alpha, &[]).await.unwrap();
    assert_eq!(alpha.candidate(&tags).unwrap().name, "build-c");

    // digest: the mutable tag `latest`.
    let digest = Policy::new(Strategy::parse("digest", "latest").unwrap());
    let tags = client.tags_for(repo, &digest, &[]).await.unwrap();
    assert_eq!(names(&tags), ["latest"]);
    assert_eq!(
        tags[0].digest.as_deref(),
        Some(first_latest.digest.as_str())
    );
    let running = Current {
        tag: Some("latest".into()),
        digest: Some(first_latest.digest.clone()),
    };
    assert_eq!(
        detect(&digest, &running, &tags),
        Detection::UpToDate {
            tag: "latest".into()
        }
    );
    let second_latest = push
        .image(repo, Some("latest"), "2026-04-02T00:00:00Z", "amd64", false)
        .await;
    let tags = client.tags_for(repo, &digest, &[]).await.unwrap();
    let Detection::Update(u) = detect(&digest, &running, &tags) else {
        panic!("a new digest for latest")
    };
    assert_eq!(u.new_digest.as_deref(), Some(second_latest.digest.as_str()));
    assert_eq!(u.old_digest.as_deref(), Some(first_latest.digest.as_str()));

    // Manifests: HEAD and GET agree with the bytes pushed.
    let m = client.manifest(repo, "latest").await.unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
    assert_eq!(m.bytes, second_latest.bytes);
    assert_eq!(m.digest, second_latest.digest);
    assert!(
        matches!(&m.kind, ManifestKind::Image { config, layers } if config.digest == second_latest.config_digest && layers.len() == 1)
    );
    assert_eq!(client.digest(repo, "latest").await.unwrap(), m.digest);
    let by_digest = client.manifest(repo, &first_latest.digest).await.unwrap();
    assert_eq!(by_digest.bytes, first_latest.bytes);
    assert_eq!(
        client
            .build_time(repo, &first_latest.config_digest)
            .await
            .unwrap(),
        Some(time("2026-04-01T00:00:00Z"))
    );

    // Typed errors.
    match client.manifest(repo, "nope").await {
        Err(RegistryError::Status {
            status: 404,
            repository,
            reference,
            body,
            ..
        }) => {
            assert_eq!(repository, repo);
            assert_eq!(reference.as_deref(), Some("nope"));
            assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.digest(repo, "nope").await,
        Err(RegistryError::Status { status: 404, .. })
    ));
    assert!(matches!(
        client.tags("shop/none").await,
        Err(RegistryError::Status { status: 404, .. })
    ));
    assert!(matches!(
        client.tags("Shop/Web").await,
        Err(RegistryError::BadRepository { .. })
    ));
    assert!(matches!(
        client.manifest(repo, "a:b:c").await,
        Err(RegistryError::BadReference { .. })
    ));
    // A registry that is not there: a transport error, not a hang.
    let gone = RegistryClient::new(RegistryConfig::new(format!(
        "http://127.0.0.1:{}",
        free_port()
    )))
    .unwrap();
    assert!(matches!(
        gone.tags(repo).await,
        Err(RegistryError::Transport { .. })
    ));
}

#[tokio::test]
async fn oci_manifests_and_multi_platform_indexes() {
    let reg = Registry::start(None).await;
    let push = Pusher::new(&reg.url, None);
    let repo = "shop/multi";
    let amd = push
        .image(repo, None, "2026-05-01T00:00:00Z", "amd64", true)
        .await;
    let arm = push
        .image(repo, None, "2026-05-02T00:00:00Z", "arm64", true)
        .await;
    let index = push
        .index(repo, "multi", &[(&amd, "amd64"), (&arm, "arm64")], true)
        .await;
    let damd = push
        .image(repo, None, "2026-06-01T00:00:00Z", "amd64", false)
        .await;
    let darm = push
        .image(repo, None, "2026-06-02T00:00:00Z", "arm64", false)
        .await;
    let list = push
        .index(
            repo,
            "multi-docker",
            &[(&damd, "amd64"), (&darm, "arm64")],
            false,
        )
        .await;
    let single = push
        .image(
            repo,
            Some("oci-single"),
            "2026-07-01T00:00:00Z",
            "amd64",
            true,
        )
        .await;

    let client = reg.client(None, None);
    let m = client.manifest(repo, "multi").await.unwrap();
    assert_eq!(
        (m.media_type.as_str(), m.digest.as_str()),
        (OCI_INDEX, index.as_str())
    );
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let arm64 = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        m.platform_digests(),
        [
            (amd64.clone(), amd.digest.clone()),
            (arm64.clone(), arm.digest.clone())
        ]
    );
    assert_eq!(client.digest(repo, "multi").await.unwrap(), index);
    let all = client.tag_metadata(repo, "multi", &[]).await.unwrap();
    assert_eq!(all.created, Some(time("2026-05-02T00:00:00Z")));
    assert_eq!(all.digest.as_deref(), Some(index.as_str()));
    let only_amd = client
        .tag_metadata(repo, "multi", std::slice::from_ref(&amd64))
        .await
        .unwrap();
    assert_eq!(only_amd.created, Some(time("2026-05-01T00:00:00Z")));
    let none = client
        .tag_metadata(repo, "multi", &[Platform::parse("windows/amd64").unwrap()])
        .await
        .unwrap();
    assert_eq!(none.created, None);

    let l = client.manifest(repo, "multi-docker").await.unwrap();
    assert_eq!(l.media_type, DOCKER_MANIFEST_LIST);
    assert_eq!(l.digest, list);
    assert_eq!(
        l.platform_digests(),
        [
            (amd64.clone(), damd.digest.clone()),
            (arm64, darm.digest.clone())
        ]
    );
    let child = client.manifest(repo, &darm.digest).await.unwrap();
    assert_eq!(child.media_type, DOCKER_MANIFEST);

    let s = client.manifest(repo, "oci-single").await.unwrap();
    assert_eq!(
        (s.media_type.as_str(), s.digest.as_str()),
        (OCI_MANIFEST, single.digest.as_str())
    );
    let meta = client
        .tag_metadata(repo, "oci-single", &[amd64])
        .await
        .unwrap();
    assert_eq!(meta.created, Some(time("2026-07-01T00:00:00Z")));

    // newest-build across image and index tags: the index counts with its newest
    // platform.
    let newest = Policy::new(Strategy::NewestBuild);
    let tags = client.tags_for(repo, &newest, &[]).await.unwrap();
    let ranked: Vec<&str> = newest
        .ranked(&tags)
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(ranked, ["multi", "multi-docker", "oci-single"]);
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let reg = Registry::start(Some(("alice", "s3cret"))).await;
    let push = Pusher::new(&reg.url, Some(("alice", "s3cret")));
    let repo = "shop/private";
    let pushed = push
        .image(repo, Some("1.0.0"), "2026-01-01T00:00:00Z", "amd64", false)
        .await;

    match reg.client(None, None).tags(repo).await {
        Err(RegistryError::Unauthorized {
            repository,
            credentials_sent: false,
            challenge,
            ..
        }) => {
            assert_eq!(repository, repo);
            assert!(challenge.is_some_and(|c| c.starts_with("Basic")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        reg.client(None, Some(("alice", "wrong")))
            .manifest(repo, "1.0.0")
            .await,
        Err(RegistryError::Unauthorized {
            credentials_sent: true,
            ..
        })
    ));
    let client = reg.client(None, Some(("alice", "s3cret")));
    assert_eq!(client.tags(repo).await.unwrap(), ["1.0.0"]);
    let m = client.manifest(repo, "1.0.0").await.unwrap();
    assert_eq!(m.digest, pushed.digest);
    let meta = client.tag_metadata(repo, "1.0.0", &[]).await.unwrap();
    assert_eq!(meta.created, Some(time("2026-01-01T00:00:00Z")));
}

/// A one-request-per-connection HTTP stub: a token service plus a registry that wants
/// its tokens and pages its tag lists with `Link`.
struct Stub {
    url: String,
    token_requests: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<String>>>,
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &str) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = stream.write_all(out.as_bytes());
}

impl Stub {
    fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let token_requests = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tr, lg, base) = (token_requests.clone(), log.clone(), url.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = v.trim().to_string();
                    }
                }
                lg.lock().unwrap().push(format!("{target} [{auth}]"));
                let challenge = |repo: &str| {
                    (
                        "WWW-Authenticate",
                        format!(
                            r#"Bearer realm="{base}/token",service="stub",scope="repository:{repo}:pull""#
                        ),
                    )
                };
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                match path {
                    "/token" => {
                        tr.fetch_add(1, Ordering::SeqCst);
                        // "bob:pw" in base64.
                        if auth != "Basic Ym9iOnB3" {
                            respond(&mut stream, "401 Unauthorized", &[], "{}");
                        } else if query.contains("scope=repository%3Ashop%2F")
                            && query.contains("service=stub")
                        {
                            respond(&mut stream, "200 OK", &[], r#"{"token":"tok-1"}"#);
                        } else {
                            respond(&mut stream, "500 Internal Server Error", &[], "no");
                        }
                    }
                    "/v2/shop/web/tags/list"
                    | "/v2/other/tags/list"
                    | "/v2/shop/loop/tags/list"
                    | "/v2/shop/away/tags/list" => {
                        let repo = &path["/v2/".len()..path.len() - "/tags/list".len()];
                        if auth != "Bearer tok-1" {
                            respond(&mut stream, "401 Unauthorized", &[challenge(repo)], "{}");
                            continue;
                        }
                        let link = |last: &str| {
                            (
                                "Link",
                                format!("</v2/{repo}/tags/list?n=2&last={last}>; rel=\"next\""),
                            )
                        };
                        let (tags, headers) = match (repo, query) {
                            ("shop/web", "n=2") => (r#"["a","b"]"#, vec![link("b")]),
                            ("shop/web", "n=2&last=b") => (r#"["c","d"]"#, vec![link("d")]),
                            ("shop/web", "n=2&last=d") => (r#"["e"]"#, vec![]),
                            ("shop/loop", _) => (r#"["x"]"#, vec![link("x"), link("x")]),
                            ("shop/away", _) => (
                                r#"["y"]"#,
                                vec![(
                                    "Link",
                                    "<http://elsewhere.invalid/v2/x>; rel=\"next\"".to_string(),
                                )],
                            ),
                            _ => {
                                respond(&mut stream, "404 Not Found", &[], "{}");
                                continue;
                            }
                        };
                        let body = format!(r#"{{"name":"{repo}","tags":{tags}}}"#);
                        respond(&mut stream, "200 OK", &headers, &body);
                    }
                    "/v2/shop/web/manifests/forged" => {
                        // A manifest whose claimed digest is not the hash of its bytes.
                        let body = format!(
                            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:{}"}},"layers":[]}}"#,
                            "1".repeat(64)
                        );
                        let headers = [
                            (
                                "Content-Type",
                                "application/vnd.docker.distribution.manifest.v2+json".to_string(),
                            ),
                            (
                                "Docker-Content-Digest",
                                format!("sha256:{}", "0".repeat(64)),
                            ),
                        ];
                        if auth == "Bearer tok-1" {
                            respond(&mut stream, "200 OK", &headers, &body);
                        } else {
                            respond(
                                &mut stream,
                                "401 Unauthorized",
                                &[challenge("shop/web")],
                                "{}",
                            );
                        }
                    }
                    _ => respond(&mut stream, "404 Not Found", &[], "{}"),
                }
            }
        });
        Stub {
            url,
            token_requests,
            log,
        }
    }

    fn client(&self, creds: Option<(&str, &str)>) -> RegistryClient {
        let mut c = RegistryConfig::new(&self.url);
        c.page_size = Some(2);
        c.timeout = Duration::from_secs(5);
        c.max_pages = 10;
        c.credentials = creds.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        });
        RegistryClient::new(c).unwrap()
    }
}

#[tokio::test]
async fn bearer_token_flow_and_link_pagination_against_a_stub() {
    let stub = Stub::start();
    let client = stub.client(Some(("bob", "pw")));
    assert_eq!(
        client.tags("shop/web").await.unwrap(),
        ["a", "b", "c", "d", "e"]
    );
    // One token for all three pages: challenged once, then cached.
    assert_eq!(stub.token_requests.load(Ordering::SeqCst), 1);
    let log = stub.log.lock().unwrap().clone();
    let pages: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("/v2/shop/web/tags/list") && l.ends_with("[Bearer tok-1]"))
        .collect();
    assert_eq!(pages.len(), 3, "{log:?}");
    assert!(
        log[0].ends_with("[]"),
        "the first request carries no credentials: {log:?}"
    );

    // The token endpoint refusing the scope is a typed error with its status.
    match client.tags("other").await {
        Err(RegistryError::TokenEndpoint { realm, status, .. }) => {
            assert_eq!(realm, format!("{}/token", stub.url));
            assert_eq!(status, Some(500));
        }
        other => panic!("{other:?}"),
    }
    // Wrong credentials at the token endpoint.
    assert!(matches!(
        stub.client(Some(("bob", "nope"))).tags("shop/web").await,
        Err(RegistryError::TokenEndpoint {
            status: Some(401),
            ..
        })
    ));
    // A Link back to the same page, and one to another host, are refused.
    assert!(matches!(
        client.tags("shop/loop").await,
        Err(RegistryError::BadResponse { reason, .. }) if reason.contains("already read")
    ));
    assert!(matches!(
        client.tags("shop/away").await,
        Err(RegistryError::BadResponse { reason, .. }) if reason.contains("another host")
    ));
    // A digest header that does not match the bytes.
    match client.manifest("shop/web", "forged").await {
        Err(RegistryError::DigestMismatch {
            repository,
            reference,
            expected,
            actual,
        }) => {
            assert_eq!(
                (repository.as_str(), reference.as_str()),
                ("shop/web", "forged")
            );
            assert_eq!(expected, format!("sha256:{}", "0".repeat(64)));
            assert_ne!(actual, expected);
        }
        other => panic!("{other:?}"),
    }

    // A server that accepts the connection and never answers: a typed timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = RegistryConfig::new(format!("http://{}", silent.local_addr().unwrap()));
    config.timeout = Duration::from_millis(300);
    let started = Instant::now();
    match RegistryClient::new(config).unwrap().tags("shop/web").await {
        Err(RegistryError::Timeout {
            timeout_ms: 300, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(silent);
}

/// A detected update becomes a write-back commit in a real git repository, and that
/// commit is released through the flow.
#[cfg(feature = "git")]
#[tokio::test]
async fn detected_update_is_written_back_and_released() {
    use gitops_core::flow::{ApprovalPolicy, Effect, FlowConfig, Input, PrState, Refusal, handle};
    use gitops_core::git::{GitRepo, Identity};
    use gitops_core::image::{Target, release_through_flow, write_update};
    use gitops_core::tag::{Env, Stamp};

    let reg = Registry::start(None).await;
    let push = Pusher::new(&reg.url, None);
    let repo = "shop/web";
    for (tag, created) in [
        ("1.0.0", "2026-01-01T00:00:00Z"),
        ("1.1.0", "2026-01-02T00:00:00Z"),
    ] {
        push.image(repo, Some(tag), created, "amd64", false).await;
    }
    let image = format!("{}/{repo}", reg.url.trim_start_matches("http://"));

    let tmp = tempfile::tempdir().unwrap();
    let bot = || Identity::new("image-bot", "bot@example.invalid");
    let t = |s: i64| Stamp::from_unix_secs(1_795_300_000 + s).unwrap();
    let origin = tmp.path().join("origin.git");
    let up = GitRepo::init(&origin, true, bot()).unwrap();
    let kust = format!(
        "resources:\n  - deployment.yaml\nimages:\n  - name: {image} # the web frontend\n    newTag: \"1.0.0\"\n"
    );
    let values = "image:\n  repository: web\n  tag: 1.0.0 # bumped by the bot\n";
    up.commit_files(
        "refs/heads/main",
        None,
        &[
            (
                "apps/web/kustomization.yaml".into(),
                kust.clone().into_bytes(),
            ),
            ("charts/web/values.yaml".into(), values.as_bytes().to_vec()),
        ],
        "init",
        t(0),
    )
    .unwrap();
    let local = GitRepo::clone_from(
        &format!("file://{}", origin.display()),
        &tmp.path().join("work"),
        bot(),
    )
    .unwrap();
    let tip = local.resolve("refs/remotes/origin/main").unwrap();
    local
        .move_ref("refs/heads/main", &tip, None)
        .expect("a local main at the remote tip");

    let client = reg.client(None, None);
    let policy = Policy::new(Strategy::parse("semver", "^1.0").unwrap());
    let tags = client.tags_for(repo, &policy, &[]).await.unwrap();
    let current = Current {
        tag: Some("1.0.0".into()),
        digest: None,
    };
    let Detection::Update(update) = detect(&policy, &current, &tags) else {
        panic!("1.1.0 is newer")
    };
    let template = "chore(image): {{image}} {{old}} -> {{new}}\n\n{{changes}}\n";
    let kustomize = Target::Kustomize {
        file: "apps/web/kustomization.yaml".into(),
        name: image.clone(),
    };
    let commit = write_update(
        &local,
        "refs/heads/main",
        &kustomize,
        &image,
        &update,
        template,
        "web",
        t(10),
    )
    .unwrap()
    .expect("a commit");
    let content = String::from_utf8(
        local
            .read_file(&commit, "apps/web/kustomization.yaml")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(content, kust.replace("\"1.0.0\"", "\"1.1.0\""));
    let pushed = up.resolve("refs/heads/main").unwrap();
    assert_eq!(pushed, commit, "the commit was pushed to the remote");
    let message = up
        .raw()
        .find_commit(git2::Oid::from_str(commit.as_str()).unwrap())
        .unwrap()
        .message()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        format!(
            "chore(image): {image} 1.0.0 -> 1.1.0\n\n- apps/web/kustomization.yaml: images[{image}].newTag 1.0.0 -> 1.1.0\n"
        )
    );
    // Detecting again after the write-back: nothing to commit.
    assert_eq!(
        write_update(
            &local,
            "refs/heads/main",
            &kustomize,
            &image,
            &update,
            template,
            "web",
            t(11)
        )
        .unwrap(),
        None
    );
    // The Helm values target, same update.
    let helm = Target::Helm {
        file: "charts/web/values.yaml".into(),
        tag_key: "image.tag".into(),
        digest_key: None,
    };
    let helm_commit = write_update(
        &local,
        "refs/heads/main",
        &helm,
        &image,
        &update,
        gitops_core::image::DEFAULT_COMMIT_TEMPLATE,
        "web",
        t(12),
    )
    .unwrap()
    .expect("a commit");
    let v = String::from_utf8(
        local
            .read_file(&helm_commit, "charts/web/values.yaml")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v, values.replace("1.0.0 #", "1.1.0 #"));
    // A template with an unknown placeholder is refused before anything is written.
    assert!(
        write_update(
            &local,
            "refs/heads/main",
            &helm,
            &image,
            &update,
            "{{tag}}",
            "web",
            t(13)
        )
        .is_err()
    );
    assert_eq!(up.resolve("refs/heads/main").unwrap(), helm_commit);

    // Release the write-back commit to prod through the flow.
    let prod = Env::new("prod").unwrap();
    let config = FlowConfig {
        envs: vec![prod.clone()],
        approval: ApprovalPolicy {
            tech_leads: ["alice".to_string()].into_iter().collect(),
            min_approvals: 1,
        },
        releasers: Default::default(),
    };
    let state = PrState::new(42, commit.clone());
    let ledger = local.ledger().unwrap();
    // Without an approval of that commit the flow refuses, typed.
    let refused = release_through_flow(
        &state,
        &ledger,
        &config,
        "image-bot",
        &prod,
        &helm_commit,
        t(20),
    );
    assert!(
        matches!(refused, Err(Refusal::NotApproved { .. })),
        "{refused:?}"
    );
    let approved = handle(
        &PrState::new(42, helm_commit.clone()),
        &ledger,
        &config,
        &Input::Approved {
            reviewer: "alice".into(),
            commit: helm_commit.clone(),
        },
        t(21),
    )
    .unwrap();
    let decision = release_through_flow(
        &approved.state,
        &ledger,
        &config,
        "image-bot",
        &prod,
        &helm_commit,
        t(22),
    )
    .unwrap();
    let plan = decision
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .expect("a plan to publish");
    local.publish(&plan).unwrap();
    local.fetch().unwrap();
    assert_eq!(local.ledger().unwrap().pointer(&prod), Some(&helm_commit));
}
