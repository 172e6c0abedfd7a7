//! ecskube's two webhook configurations as the certificate manager keeps
//! them: `caBundle` in step with the Secret, and, at start, re-created from
//! the shipped manifest when an admin deleted them to get the cluster
//! writing again while ecskube was down (README, "Troubleshooting").

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// webhook-config/webhooks.yaml, as `kubectl apply -k` installs it.
const SHIPPED: &str = include_str!("../../webhook-config/webhooks.yaml");

/// Where the configurations send their calls.
#[derive(Debug, Clone)]
pub struct Target {
    /// Both configurations' name.
    pub name: String,
    pub service_namespace: String,
    pub service: String,
}

/// What the two configuration kinds share here: their webhooks' client configs.
trait Hooks:
    Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope> + Clone + std::fmt::Debug + DeserializeOwned + serde::Serialize
{
    const KIND: &'static str;
    fn client_configs(&mut self) -> Vec<&mut WebhookClientConfig>;
}

impl Hooks for MutatingWebhookConfiguration {
    const KIND: &'static str = "MutatingWebhookConfiguration";
    fn client_configs(&mut self) -> Vec<&mut WebhookClientConfig> {
        self.webhooks.iter_mut().flatten().map(|w| &mut w.client_config).collect()
    }
}

impl Hooks for ValidatingWebhookConfiguration {
    const KIND: &'static str = "ValidatingWebhookConfiguration";
    fn client_configs(&mut self) -> Vec<&mut WebhookClientConfig> {
        self.webhooks.iter_mut().flatten().map(|w| &mut w.client_config).collect()
    }
}

/// The shipped configuration of kind `K`, named and pointed at `target`.
fn shipped<K: Hooks>(target: &Target) -> anyhow::Result<K> {
    for doc in serde_yaml_ng::Deserializer::from_str(SHIPPED) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if value["kind"] != K::KIND {
            continue;
        }
        let mut config: K = serde_json::from_value(value)?;
        config.meta_mut().name = Some(target.name.clone());
        for client in config.client_configs() {
            if let Some(service) = client.service.as_mut() {
                service.namespace = target.service_namespace.clone();
                service.name = target.service.clone();
            }
        }
        return Ok(config);
    }
    anyhow::bail!("webhooks.yaml holds no {}", K::KIND)
}

/// Every webhook's `caBundle`, decoded (a missing configuration adds none).
pub async fn trusted_bundles(client: &Client, target: &Target) -> anyhow::Result<Vec<String>> {
    let mut out = bundles_of::<MutatingWebhookConfiguration>(client, target).await?;
    out.extend(bundles_of::<ValidatingWebhookConfiguration>(client, target).await?);
    Ok(out)
}

async fn bundles_of<K: Hooks>(client: &Client, target: &Target) -> anyhow::Result<Vec<String>> {
    let api: Api<K> = Api::all(client.clone());
    let Some(mut config) = api.get_opt(&target.name).await? else {
        return Ok(Vec::new());
    };
    Ok(config
        .client_configs()
        .into_iter()
        .map(|c| {
            c.ca_bundle
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default()
        })
        .collect())
}

/// Writes `bundle` into every webhook's `caBundle` that differs; with
/// `recreate`, first creates a missing configuration from the shipped
/// manifest (owned by ecskube's Namespace, so removing the install removes
/// it too). Returns the kinds it created.
pub async fn keep(client: &Client, target: &Target, bundle: &str, recreate: bool) -> anyhow::Result<Vec<&'static str>> {
    let owner = if recreate {
        namespace_owner(client, &target.service_namespace).await
    } else {
        None
    };
    let mut created = Vec::new();
    if keep_one::<MutatingWebhookConfiguration>(client, target, bundle, recreate.then_some(&owner)).await? {
        created.push(MutatingWebhookConfiguration::KIND);
    }
    if keep_one::<ValidatingWebhookConfiguration>(client, target, bundle, recreate.then_some(&owner)).await? {
        created.push(ValidatingWebhookConfiguration::KIND);
    }
    Ok(created)
}

async fn keep_one<K: Hooks>(
    client: &Client,
    target: &Target,
    bundle: &str,
    recreate_owned_by: Option<&Option<OwnerReference>>,
) -> anyhow::Result<bool> {
    let api: Api<K> = Api::all(client.clone());
    let wanted = ByteString(bundle.as_bytes().to_vec());
    let Some(mut config) = api.get_opt(&target.name).await? else {
        let Some(owner) = recreate_owned_by else { return Ok(false) };
        let mut config: K = shipped(target)?;
        for client in config.client_configs() {
            client.ca_bundle = Some(wanted.clone());
        }
        config.meta_mut().owner_references = owner.clone().map(|o| vec![o]);
        api.create(&PostParams::default(), &config).await?;
        tracing::info!(kind = K::KIND, name = %target.name, "re-created the webhook configuration from the shipped manifest");
        return Ok(true);
    };
    let mut changed = false;
    for client in config.client_configs() {
        if client.ca_bundle.as_ref() != Some(&wanted) {
            client.ca_bundle = Some(wanted.clone());
            changed = true;
        }
    }
    if changed {
        api.replace(&target.name, &PostParams::default(), &config).await?;
    }
    Ok(false)
}

/// ecskube's Namespace as an owner (cluster-scoped, so a valid owner of a
/// cluster-scoped object); None, with a warning, if it cannot be read.
async fn namespace_owner(client: &Client, namespace: &str) -> Option<OwnerReference> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get(namespace).await {
        Ok(ns) => Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: ns.name_any(),
            uid: ns.uid()?,
            ..Default::default()
        }),
        Err(e) => {
            tracing::warn!(error = %e, namespace, "cannot read ecskube's Namespace: a re-created webhook configuration will not be removed with it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "ecskube-test".into(),
            service_namespace: "tools".into(),
            service: "hooks".into(),
        }
    }

    #[test]
    fn the_shipped_configurations_parse_and_are_pointed_at_the_target() {
        let mutating: MutatingWebhookConfiguration = shipped(&target()).unwrap();
        let validating: ValidatingWebhookConfiguration = shipped(&target()).unwrap();
        assert_eq!(mutating.metadata.name.as_deref(), Some("ecskube-test"));
        assert_eq!(validating.metadata.name.as_deref(), Some("ecskube-test"));
        let paths: Vec<_> = [mutating.clone().client_configs(), validating.clone().client_configs()]
            .into_iter()
            .flatten()
            .map(|c| {
                let s = c.service.clone().unwrap();
                assert_eq!((s.namespace.as_str(), s.name.as_str()), ("tools", "hooks"));
                assert!(c.url.is_none());
                s.path.unwrap()
            })
            .collect();
        assert_eq!(paths, ["/mutate", "/validate"]);
        let w = &validating.webhooks.unwrap()[0];
        assert_eq!(w.failure_policy.as_deref(), Some("Fail"));
        assert!(
            w.namespace_selector.is_some(),
            "the selector that keeps kube-system out must carry over"
        );
    }
}
