//! Installing CustomResourceDefinitions and creating objects from YAML manifests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::runtime::wait::{await_condition, conditions};

use crate::Error;

/// The directory of CRDs shipped with the fixture (`testenv/crds`).
pub fn default_crd_dir() -> PathBuf {
    crate::binaries::testenv_dir().join("crds")
}

/// Parses every YAML document of `text` into JSON values, skipping empty ones.
pub fn parse_documents(what: &str, text: &str) -> Result<Vec<serde_json::Value>, Error> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|source| Error::Yaml {
            what: what.to_owned(),
            source: Box::new(source),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Reads the CRDs of every `*.yaml` / `*.yml` file in `dir`, in file-name order.
pub fn read_crds(dir: &Path) -> Result<Vec<CustomResourceDefinition>, Error> {
    let entries =
        std::fs::read_dir(dir).map_err(Error::io(format!("listing {}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(Error::io(format!("listing {}", dir.display())))?
            .path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let what = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(Error::io(format!("reading {what}")))?;
        for doc in parse_documents(&what, &text)? {
            if doc.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                continue;
            }
            let crd: CustomResourceDefinition =
                serde_json::from_value(doc).map_err(|e| Error::Manifest {
                    what: what.clone(),
                    problem: format!("not a valid CRD: {e}"),
                })?;
            crds.push(crd);
        }
    }
    Ok(crds)
}

/// Creates the CRDs (an existing one of the same name is left alone) and waits,
/// at most `timeout` in all, until each reports `Established`. Returns their names.
pub async fn install_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::with_capacity(crds.len());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(source) => {
                return Err(Error::Kube {
                    context: format!("creating CRD {name}"),
                    source,
                });
            }
        }
        names.push(name);
    }
    let started = Instant::now();
    for name in &names {
        let left = timeout.saturating_sub(started.elapsed());
        let established = tokio::time::timeout(
            left,
            await_condition(api.clone(), name, conditions::is_crd_established()),
        );
        match established.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Error::Manifest {
                    what: format!("CRD {name}"),
                    problem: format!("waiting for it: {e}"),
                });
            }
            Err(_) => {
                return Err(Error::CrdNotEstablished {
                    name: name.clone(),
                    waited: started.elapsed(),
                });
            }
        }
    }
    Ok(names)
}

/// Creates every document of a multi-document YAML manifest, in order, in
/// `namespace` (cluster-scoped kinds ignore it). The kind of each document is
/// resolved through API discovery, so built-in kinds and installed CRDs both work.
pub async fn create_manifests(
    client: &Client,
    namespace: &str,
    yaml: &str,
) -> Result<Vec<DynamicObject>, Error> {
    let mut created = Vec::new();
    for (index, doc) in parse_documents("manifest", yaml)?.into_iter().enumerate() {
        let what = format!("document {index}");
        let obj: DynamicObject = serde_json::from_value(doc).map_err(|e| Error::Manifest {
            what: what.clone(),
            problem: format!("not an object: {e}"),
        })?;
        let types = obj.types.clone().ok_or_else(|| Error::Manifest {
            what: what.clone(),
            problem: "no apiVersion/kind".to_owned(),
        })?;
        let gvk = GroupVersionKind::try_from(&types).map_err(|e| Error::Manifest {
            what: what.clone(),
            problem: format!("bad apiVersion: {e}"),
        })?;
        let (resource, caps) =
            kube::discovery::pinned_kind(client, &gvk)
                .await
                .map_err(Error::kube(format!(
                    "discovering {}/{} for {what}",
                    types.api_version, types.kind
                )))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let name = obj.metadata.name.clone().unwrap_or_default();
        let made = api
            .create(&PostParams::default(), &obj)
            .await
            .map_err(Error::kube(format!(
                "creating {} {name} ({what})",
                types.kind
            )))?;
        created.push(made);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_crds_parse() {
        let crds = read_crds(&default_crd_dir())
            .unwrap_or_else(|e| panic!("{e}: {:?}", std::error::Error::source(&e)));
        let names: Vec<_> = crds
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        assert_eq!(names.len(), 13, "{names:?}");
        assert!(names.contains(&"rollouts.argoproj.io"));
        assert!(names.contains(&"virtualservices.networking.istio.io"));
    }
}
