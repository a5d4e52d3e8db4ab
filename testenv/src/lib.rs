//! A real Kubernetes API server for integration tests.
//!
//! [`TestEnv::start`] starts `etcd` and `kube-apiserver` on 127.0.0.1 with
//! random free ports, a fresh PKI (CA, serving certificate, admin client
//! certificate in `system:masters`, service-account key pair), a kubeconfig in
//! a temporary directory and the CRDs of `testenv/crds` installed and
//! `Established`; [`TestEnv::client`] hands out a [`kube::Client`] for it.
//!
//! The binaries are built from their Go modules by `testenv/build.sh` at the
//! versions pinned in `testenv/versions.env` and cached between runs (see
//! [`binaries`]). If they are missing and cannot be built, starting fails with
//! [`Error::BinariesMissing`]: tests never pass silently without a server.
//!
//! Nothing listens beyond loopback, and the servers cannot outlive the tests:
//! they stop when the [`TestEnv`] is dropped (also while unwinding from a
//! panic), within seconds of the test process dying, and at the latest
//! after [`Options::lifetime`].
//!
//! No kubelet, scheduler or controller-manager runs: [`DataPlane`] writes the
//! ReplicaSet and Pod status they would write.
//!
//! [`prometheus::Prometheus`] is a real Prometheus server on samples a test
//! writes, for metric-provider tests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rollout_testenv::Error> {
//! let env = rollout_testenv::TestEnv::shared().await?;
//! let client = env.client()?;
//! let ns = env.create_namespace(&client, "demo").await?;
//! # let _ = ns; Ok(()) }
//! ```

pub mod binaries;
pub mod certs;
pub mod crds;
pub mod dataplane;
mod error;
mod process;
pub mod prometheus;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::{Client, Config};

pub use crate::binaries::{Binaries, BuildPolicy, Versions};
pub use crate::crds::create_manifests;
pub use crate::dataplane::{DataPlane, ReplicaCounts};
pub use crate::error::Error;
use crate::process::ManagedProcess;

/// The service CIDR given to the API server.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
/// The first address of [`SERVICE_CIDR`], the `kubernetes` Service's IP.
pub const SERVICE_IP: &str = "10.0.0.1";
/// The service-account token issuer.
pub const SA_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Overrides [`Options::lifetime`], in seconds.
pub const LIFETIME_ENV: &str = "ROLLOUT_TESTENV_LIFETIME_SECS";
/// Set to `1` to keep the temporary directory (logs, kubeconfig, etcd data).
pub const KEEP_ENV: &str = "ROLLOUT_TESTENV_KEEP";

/// How to start a [`TestEnv`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Directories whose `*.yaml` CRDs are installed; default: `testenv/crds`.
    pub crd_dirs: Vec<PathBuf>,
    /// Bound on each readiness wait (etcd health, `/readyz`, CRDs Established).
    pub ready_timeout: Duration,
    /// The servers are killed after this long whatever happens (`timeout`);
    /// default 30 minutes, or `$ROLLOUT_TESTENV_LIFETIME_SECS`.
    pub lifetime: Duration,
    /// Extra `kube-apiserver` flags, appended after the fixture's own.
    pub extra_apiserver_args: Vec<String>,
    /// Where `kube-apiserver` and `etcd` are; default [`binaries::bin_dir`].
    pub bin_dir: PathBuf,
    /// When to build them; default [`BuildPolicy::from_env`].
    pub build: BuildPolicy,
}

impl Default for Options {
    fn default() -> Options {
        let lifetime = std::env::var(LIFETIME_ENV)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(Duration::from_secs(30 * 60), Duration::from_secs);
        Options {
            crd_dirs: vec![crds::default_crd_dir()],
            ready_timeout: Duration::from_secs(120),
            lifetime,
            extra_apiserver_args: Vec::new(),
            bin_dir: binaries::bin_dir(),
            build: BuildPolicy::from_env(),
        }
    }
}

impl Options {
    /// Options that install no CRDs (faster to start).
    pub fn without_crds() -> Options {
        Options {
            crd_dirs: Vec::new(),
            ..Options::default()
        }
    }
}

/// A running etcd + kube-apiserver pair; stopped when dropped.
pub struct TestEnv {
    // Fields drop in order: the API server stops before etcd, and both before
    // the directory is removed.
    apiserver: ManagedProcess,
    etcd: ManagedProcess,
    config: Config,
    server_url: String,
    etcd_url: String,
    kubeconfig: PathBuf,
    pki: certs::Pki,
    crds: Vec<String>,
    root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("server_url", &self.server_url)
            .field("etcd_url", &self.etcd_url)
            .field("dir", &self.root)
            .finish_non_exhaustive()
    }
}

static SHARED: tokio::sync::OnceCell<Result<Arc<TestEnv>, Arc<Error>>> =
    tokio::sync::OnceCell::const_new();

impl TestEnv {
    /// Starts an environment with [`Options::default`].
    pub async fn start() -> Result<TestEnv, Error> {
        TestEnv::start_with(Options::default()).await
    }

    /// One environment for the whole test binary, started on first use.
    ///
    /// Tests sharing it should work in namespaces of their own
    /// ([`TestEnv::create_namespace`]) and create a client each
    /// ([`TestEnv::client`]), since a client belongs to the async runtime it
    /// was first used on. The environment is never dropped; its servers stop
    /// within seconds of the test process ending (or after
    /// [`Options::lifetime`]), and its directory is then removed.
    pub async fn shared() -> Result<Arc<TestEnv>, Error> {
        let result = SHARED
            .get_or_init(|| async { TestEnv::start().await.map(Arc::new).map_err(Arc::new) })
            .await;
        match result {
            Ok(env) => Ok(Arc::clone(env)),
            Err(e) => Err(Error::Shared(Arc::clone(e))),
        }
    }

    /// Starts an environment.
    pub async fn start_with(options: Options) -> Result<TestEnv, Error> {
        let (bin_dir, build) = (options.bin_dir.clone(), options.build);
        let bins = tokio::task::spawn_blocking(move || binaries::ensure_binaries(&bin_dir, build))
            .await
            .map_err(|e| Error::Io {
                context: "waiting for the binaries".to_owned(),
                source: std::io::Error::other(e.to_string()),
            })??;

        let keep = std::env::var(KEEP_ENV).is_ok_and(|v| v == "1");
        let dir = tempfile::Builder::new()
            .prefix("rollout-testenv-")
            .tempdir()
            .map_err(Error::io("creating the temporary directory"))?;
        let (root, dir) = if keep {
            let root = dir.keep();
            eprintln!("rollout-testenv: keeping {}", root.display());
            (root, None)
        } else {
            (dir.path().to_path_buf(), Some(dir))
        };
        let pki_dir = root.join("pki");
        std::fs::create_dir_all(&pki_dir)
            .map_err(Error::io(format!("creating {}", pki_dir.display())))?;
        let pki = certs::generate(&pki_dir)?;

        // A port picked as free can be taken before the server binds it: retry.
        let mut attempt = 0;
        let (etcd, apiserver, etcd_url, server_url, kubeconfig, config) = loop {
            attempt += 1;
            match start_servers(&bins, &options, &root, &pki, attempt, keep).await {
                Ok(started) => break started,
                Err(Error::ProcessExited { log_tail, .. })
                    if attempt < 3 && log_tail.contains("address already in use") =>
                {
                    tracing::warn!(attempt, "port taken, retrying");
                }
                Err(e) => return Err(e),
            }
        };

        let mut env = TestEnv {
            apiserver,
            etcd,
            config,
            server_url,
            etcd_url,
            kubeconfig,
            pki,
            crds: Vec::new(),
            root,
            _dir: dir,
        };
        let mut crds = Vec::new();
        for crd_dir in &options.crd_dirs {
            crds.extend(crds::read_crds(crd_dir)?);
        }
        if !crds.is_empty() {
            let client = env.client()?;
            env.crds = crds::install_crds(&client, &crds, options.ready_timeout).await?;
        }
        Ok(env)
    }

    /// A new client for the API server, authenticated as the admin
    /// (`system:masters`). Create one per test / per async runtime.
    pub fn client(&self) -> Result<Client, Error> {
        Client::try_from(self.config.clone()).map_err(Error::kube("building a client"))
    }

    /// The client configuration [`TestEnv::client`] uses.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// etcd's client URL, `http://127.0.0.1:<port>`.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// A kubeconfig file for the admin user (usable with `kubectl --kubeconfig`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The generated certificates and keys.
    pub fn pki(&self) -> &certs::Pki {
        &self.pki
    }

    /// The environment's temporary directory (logs, PKI, kubeconfig, etcd data).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The API server's log file.
    pub fn apiserver_log(&self) -> &Path {
        self.apiserver.log()
    }

    /// etcd's log file.
    pub fn etcd_log(&self) -> &Path {
        self.etcd.log()
    }

    /// The process-group ids of the API server and etcd (each is the id of the
    /// `timeout` process leading the group).
    pub fn process_groups(&self) -> [u32; 2] {
        [self.apiserver.pid(), self.etcd.pid()]
    }

    /// The names of the CRDs installed at start.
    pub fn installed_crds(&self) -> &[String] {
        &self.crds
    }

    /// A [`DataPlane`] writing through a new client.
    pub fn data_plane(&self) -> Result<DataPlane, Error> {
        Ok(DataPlane::new(self.client()?))
    }

    /// Creates a namespace named `<prefix>-<random suffix>` and returns its name.
    pub async fn create_namespace(&self, client: &Client, prefix: &str) -> Result<String, Error> {
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..Default::default()
            },
            ..Namespace::default()
        };
        let made = api
            .create(&PostParams::default(), &ns)
            .await
            .map_err(Error::kube("creating a namespace"))?;
        made.metadata.name.ok_or_else(|| Error::Manifest {
            what: "namespace".to_owned(),
            problem: "the server returned no name".to_owned(),
        })
    }
}

/// `ApiResource`s of the custom kinds the fixture installs, for `Api<DynamicObject>`.
pub mod kinds {
    use super::{ApiResource, GroupVersionKind};

    fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    /// Argo Rollouts `Rollout` (argoproj.io/v1alpha1).
    pub fn rollout() -> ApiResource {
        ar("argoproj.io", "v1alpha1", "Rollout", "rollouts")
    }
    /// Argo Rollouts `AnalysisRun` (argoproj.io/v1alpha1).
    pub fn analysis_run() -> ApiResource {
        ar("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns")
    }
    /// Argo Rollouts `AnalysisTemplate` (argoproj.io/v1alpha1).
    pub fn analysis_template() -> ApiResource {
        ar(
            "argoproj.io",
            "v1alpha1",
            "AnalysisTemplate",
            "analysistemplates",
        )
    }
    /// Argo Rollouts `Experiment` (argoproj.io/v1alpha1).
    pub fn experiment() -> ApiResource {
        ar("argoproj.io", "v1alpha1", "Experiment", "experiments")
    }
    /// Istio `VirtualService` (networking.istio.io/v1).
    pub fn virtual_service() -> ApiResource {
        ar(
            "networking.istio.io",
            "v1",
            "VirtualService",
            "virtualservices",
        )
    }
    /// Istio `DestinationRule` (networking.istio.io/v1).
    pub fn destination_rule() -> ApiResource {
        ar(
            "networking.istio.io",
            "v1",
            "DestinationRule",
            "destinationrules",
        )
    }
    /// Gateway API `HTTPRoute` (gateway.networking.k8s.io/v1).
    pub fn http_route() -> ApiResource {
        ar("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
    }
    /// SMI `TrafficSplit` (split.smi-spec.io/v1alpha2).
    pub fn traffic_split() -> ApiResource {
        ar(
            "split.smi-spec.io",
            "v1alpha2",
            "TrafficSplit",
            "trafficsplits",
        )
    }
    /// Flagger `Canary` (flagger.app/v1beta1).
    pub fn canary() -> ApiResource {
        ar("flagger.app", "v1beta1", "Canary", "canaries")
    }
}

type Started = (
    ManagedProcess,
    ManagedProcess,
    String,
    String,
    PathBuf,
    Config,
);

async fn start_servers(
    bins: &Binaries,
    options: &Options,
    root: &Path,
    pki: &certs::Pki,
    attempt: u32,
    keep: bool,
) -> Result<Started, Error> {
    let [client_port, peer_port, api_port] = process::free_ports::<3>()?;
    let etcd_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let data_dir = root.join(format!("etcd-data-{attempt}"));
    let path = |p: &Path| p.display().to_string();

    let etcd_args = vec![
        "--name=testenv".to_owned(),
        format!("--data-dir={}", path(&data_dir)),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=testenv={peer_url}"),
        "--initial-cluster-state=new".to_owned(),
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ];
    let mut etcd = ManagedProcess::spawn(
        "etcd",
        &bins.etcd,
        &etcd_args,
        root.join(format!("etcd-{attempt}.log")),
        options.lifetime,
        (!keep).then_some(data_dir.as_path()),
    )?;
    wait_for_etcd(&mut etcd, client_port, options.ready_timeout).await?;

    let server_url = format!("https://127.0.0.1:{api_port}");
    let kubeconfig = root.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &server_url, pki)?;

    let mut api_args = vec![
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={api_port}"),
        format!("--etcd-servers={etcd_url}"),
        format!("--cert-dir={}", path(&root.join("apiserver-certs"))),
        format!("--tls-cert-file={}", path(&pki.serving_cert)),
        format!("--tls-private-key-file={}", path(&pki.serving_key)),
        format!("--client-ca-file={}", path(&pki.ca_cert)),
        format!("--service-account-issuer={SA_ISSUER}"),
        format!("--service-account-key-file={}", path(&pki.sa_pub)),
        format!("--service-account-signing-key-file={}", path(&pki.sa_key)),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
        "--authorization-mode=RBAC".to_owned(),
        // No controller-manager creates default ServiceAccounts.
        "--disable-admission-plugins=ServiceAccount".to_owned(),
        // The endpoint reconciler would publish 127.0.0.1, which Endpoints reject.
        "--endpoint-reconciler-type=none".to_owned(),
        "--allow-privileged=true".to_owned(),
        "--profiling=false".to_owned(),
        "--enable-priority-and-fairness=false".to_owned(),
    ];
    api_args.extend(options.extra_apiserver_args.iter().cloned());
    let mut apiserver = ManagedProcess::spawn(
        "kube-apiserver",
        &bins.kube_apiserver,
        &api_args,
        root.join(format!("kube-apiserver-{attempt}.log")),
        options.lifetime,
        (!keep).then_some(root),
    )?;

    let kc = Kubeconfig::read_from(&kubeconfig).map_err(|source| Error::Kubeconfig {
        path: kubeconfig.clone(),
        source,
    })?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            path: kubeconfig.clone(),
            source,
        })?;
    let client = Client::try_from(config.clone()).map_err(Error::kube("building a client"))?;
    wait_for_readyz(&mut apiserver, &mut etcd, &client, options.ready_timeout).await?;
    Ok((etcd, apiserver, etcd_url, server_url, kubeconfig, config))
}

fn write_kubeconfig(path: &Path, server_url: &str, pki: &certs::Pki) -> Result<(), Error> {
    // JSON strings are valid YAML scalars: quoting paths this way is safe.
    let q = |p: &Path| serde_json::Value::String(p.display().to_string()).to_string();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rollout-testenv
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: rollout-testenv-admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: rollout-testenv
  context:
    cluster: rollout-testenv
    user: rollout-testenv-admin
    namespace: default
current-context: rollout-testenv
",
        server = server_url,
        ca = q(&pki.ca_cert),
        cert = q(&pki.admin_cert),
        key = q(&pki.admin_key),
    );
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

/// One plain-HTTP `GET /health` to etcd.
fn etcd_health(port: u16) -> Result<(), String> {
    let timeout = Duration::from_secs(1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if response.contains("\"health\":\"true\"") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {}",
            response.lines().last().unwrap_or_default()
        ))
    }
}

async fn wait_for_etcd(etcd: &mut ManagedProcess, port: u16, bound: Duration) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        etcd.check_running()?;
        let last = match etcd_health(port) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if started.elapsed() > bound {
            return Err(etcd.not_ready(started.elapsed(), last));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_readyz(
    apiserver: &mut ManagedProcess,
    etcd: &mut ManagedProcess,
    client: &Client,
    bound: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        apiserver.check_running()?;
        etcd.check_running()?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Error::Io {
                context: "building the /readyz request".to_owned(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request))
            .await
        {
            Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
            Ok(Ok(body)) => body,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 5s".to_owned(),
        };
        if started.elapsed() > bound {
            return Err(apiserver.not_ready(started.elapsed(), last));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
