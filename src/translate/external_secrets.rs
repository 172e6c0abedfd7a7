//! ECS secrets from Secrets Manager and SSM Parameter Store -> one
//! External Secrets Operator `ExternalSecret` whose target is the Secret the
//! pods already read (`<name>-secrets`, key = variable name), and the private
//! registry credentials -> an ExternalSecret templating the
//! `kubernetes.io/dockerconfigjson` Secret `<name>-registry`.
//!
//! Every form ECS accepts in `valueFrom` maps exactly (see [`parse_value_from`]).
//! The provider follows from the reference, so a task may need both stores;
//! when one it needs is not configured, nothing is generated (a half-filled
//! Secret would start pods with variables missing) and the warning says why.

use super::container::{secret_key, secret_name};
use super::pod::registry_secret_name;
use super::{Ctx, SecretStores, StoreRef};
use crate::at;
use crate::diag::Code;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{json, Value};

pub const GROUP: &str = "external-secrets.io";
pub const VERSION: &str = "v1";
pub const KIND: &str = "ExternalSecret";

/// How often ESO reads AWS again: ECS reads secrets once, when a task
/// starts; an hour keeps a rotated secret from lagging long without
/// costing much in AWS API calls.
pub const REFRESH_INTERVAL: &str = "1h";

pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, KIND))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    SecretsManager,
    ParameterStore,
}

impl Provider {
    fn describe(self) -> &'static str {
        match self {
            Provider::SecretsManager => "Secrets Manager",
            Provider::ParameterStore => "Parameter Store",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Provider::SecretsManager => "--secret-store-secrets-manager",
            Provider::ParameterStore => "--secret-store-parameter-store",
        }
    }
}

/// Where one value lives in AWS, as ESO's `remoteRef` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub provider: Provider,
    /// The secret's ARN (cross-account secrets need it), or the parameter's ARN or name.
    pub key: String,
    /// A key of the secret's JSON (`:json-key:`).
    pub property: Option<String>,
    /// `AWSCURRENT`-style stage, or `uuid/<version-id>` (ESO's Secrets
    /// Manager provider reads a `uuid/` prefix as a VersionId).
    pub version: Option<String>,
}

/// Parses an ECS `valueFrom`:
/// - `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>[:<json-key>:<version-stage>:<version-id>]`
///   (the three suffix fields may each be empty);
/// - `arn:<partition>:ssm:<region>:<account>:parameter/<name>`;
/// - a parameter name (`db-password`, `/app/db/password`), which ECS allows
///   for a parameter in the task's own region.
pub fn parse_value_from(value_from: &str) -> Result<RemoteRef, String> {
    if !value_from.starts_with("arn:") {
        if value_from.is_empty() {
            return Err("it is empty".into());
        }
        return Ok(RemoteRef {
            provider: Provider::ParameterStore,
            key: value_from.to_string(),
            property: None,
            version: None,
        });
    }
    let parts: Vec<&str> = value_from.split(':').collect();
    if parts.len() < 6 {
        return Err("an ARN has at least six `:`-separated fields".into());
    }
    match parts[2] {
        "ssm" => {
            if !parts[5].starts_with("parameter/") || parts.len() != 6 {
                return Err("an SSM parameter ARN ends in `:parameter/<name>`".into());
            }
            Ok(RemoteRef {
                provider: Provider::ParameterStore,
                key: value_from.to_string(),
                property: None,
                version: None,
            })
        }
        "secretsmanager" => {
            if parts[5] != "secret" || parts.len() < 7 || parts[6].is_empty() {
                return Err("a Secrets Manager ARN ends in `:secret:<name>`".into());
            }
            if parts.len() > 10 {
                return Err("after the secret's name come at most three fields: json-key:version-stage:version-id".into());
            }
            let field = |i: usize| parts.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
            let (stage, id) = (field(8), field(9));
            if stage.is_some() && id.is_some() {
                return Err("give a version stage or a version id, not both".into());
            }
            Ok(RemoteRef {
                provider: Provider::SecretsManager,
                key: parts[..7].join(":"),
                property: field(7),
                version: id.map(|id| format!("uuid/{id}")).or(stage),
            })
        }
        other => Err(format!(
            "the ARN's service is {other:?}: ECS reads secrets from secretsmanager or ssm"
        )),
    }
}

/// `repositoryCredentials.credentialsParameter`: a Secrets Manager secret,
/// by ARN or (same region) by name.
pub fn parse_credentials_parameter(parameter: &str) -> Result<RemoteRef, String> {
    if parameter.starts_with("arn:") {
        let r = parse_value_from(parameter)?;
        if r.provider != Provider::SecretsManager || r.property.is_some() || r.version.is_some() {
            return Err("registry credentials are a whole Secrets Manager secret: `arn:...:secretsmanager:...:secret:<name>`".into());
        }
        return Ok(r);
    }
    Ok(RemoteRef {
        provider: Provider::SecretsManager,
        key: parameter.to_string(),
        property: None,
        version: None,
    })
}

fn store(stores: &SecretStores, provider: Provider) -> Option<&StoreRef> {
    match provider {
        Provider::SecretsManager => stores.secrets_manager.as_ref(),
        Provider::ParameterStore => stores.parameter_store.as_ref(),
    }
}

fn store_json(s: &StoreRef) -> Value {
    json!({"name": s.name, "kind": s.kind})
}

fn remote_ref_json(r: &RemoteRef) -> Value {
    let mut v = json!({"key": r.key});
    if let Some(p) = &r.property {
        v["property"] = p.clone().into();
    }
    if let Some(version) = &r.version {
        v["version"] = version.clone().into();
    }
    v
}

fn external_secret(ctx: &Ctx, name: &str, store: &StoreRef, target: Value, data: Vec<Value>) -> DynamicObject {
    let mut object = DynamicObject::new(name, &api_resource());
    object.metadata = ctx.object_meta(name);
    object.data = json!({
        "spec": {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": store_json(store),
            "target": target,
            "data": data,
        }
    });
    object
}

/// One `data` item per ECS secret of the task (every container's, one key
/// per variable name, as the pods read them), or `None` with a warning.
pub fn task_secrets(ctx: &mut Ctx) -> Option<DynamicObject> {
    let stores = ctx.options.integrations.external_secrets.clone()?;
    let task = ctx.task;
    let mut items: Vec<(String, RemoteRef, String)> = Vec::new();
    for (i, c) in task.model.container_definitions.iter().enumerate() {
        for (j, s) in c.secrets.iter().enumerate() {
            let (Some(var), Some(value_from)) = (s.name.as_deref(), s.value_from.as_deref()) else {
                continue;
            };
            let path = at!(task, "containerDefinitions", i, "secrets", j, "valueFrom");
            match parse_value_from(value_from) {
                Ok(r) => items.push((secret_key(var), r, path)),
                Err(why) => {
                    ctx.warn(Code::NotCarriedOver, path, format!("{value_from:?} is not a Secrets Manager or SSM reference ({why}); no ExternalSecret is made: create the Secret \"{}\" by hand", secret_name(&ctx.meta.name)));
                    return None;
                }
            }
        }
    }
    if items.is_empty() {
        return None;
    }
    let first = items.iter().map(|(_, r, _)| r.provider).next()?;
    for (_, r, path) in &items {
        if store(&stores, r.provider).is_none() {
            ctx.warn(
                Code::NotCarriedOver,
                path.clone(),
                format!(
                    "the cluster has no {} store for External Secrets ({} is not set), so no ExternalSecret is made: create the Secret \"{}\" by hand",
                    r.provider.describe(),
                    r.provider.flag(),
                    secret_name(&ctx.meta.name)
                ),
            );
            return None;
        }
    }
    let main = store(&stores, first)?.clone();
    let mut data = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, r, _) in &items {
        // The same variable in two containers is one key (as the pods read it).
        if !seen.insert(key.clone()) {
            continue;
        }
        let mut item = json!({"secretKey": key, "remoteRef": remote_ref_json(r)});
        if r.provider != first {
            item["sourceRef"] = json!({"storeRef": store_json(store(&stores, r.provider)?)});
        }
        data.push(item);
    }
    let name = secret_name(&ctx.meta.name);
    // Owner: the Secret is ESO's and goes with the ExternalSecret.
    let target = json!({"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain"});
    Some(external_secret(ctx, &name, &main, target, data))
}

/// The registry host an image is pulled from, as a Docker config keys it.
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

/// The private registry Secret, from the Secrets Manager secret ECS reads
/// (`{"username": ..., "password": ...}`), templated as a Docker config.
pub fn registry_credentials(ctx: &mut Ctx) -> Option<DynamicObject> {
    let stores = ctx.options.integrations.external_secrets.clone()?;
    let task = ctx.task;
    let (i, c) = task
        .model
        .container_definitions
        .iter()
        .enumerate()
        .find(|(_, c)| c.repository_credentials.is_some())?;
    let parameter = c.repository_credentials.as_ref()?.credentials_parameter.as_deref()?;
    let path = at!(task, "containerDefinitions", i, "repositoryCredentials", "credentialsParameter");
    let name = registry_secret_name(&ctx.meta.name);
    let remote = match parse_credentials_parameter(parameter) {
        Ok(r) => r,
        Err(why) => {
            ctx.warn(
                Code::NotCarriedOver,
                path,
                format!("{why}; no ExternalSecret is made: create the Secret \"{name}\" by hand"),
            );
            return None;
        }
    };
    let Some(store) = stores.secrets_manager.clone() else {
        ctx.warn(
            Code::NotCarriedOver,
            path,
            format!("the cluster has no Secrets Manager store for External Secrets (--secret-store-secrets-manager is not set): create the Secret \"{name}\" by hand"),
        );
        return None;
    };
    let host = registry_host(c.image.as_deref().unwrap_or_default());
    let config = json!({"auths": {host: {
        "username": "{{ .username }}",
        "password": "{{ .password }}",
        "auth": "{{ printf \"%s:%s\" .username .password | b64enc }}",
    }}});
    let target = json!({
        "name": name,
        "creationPolicy": "Owner",
        "deletionPolicy": "Retain",
        "template": {
            "type": "kubernetes.io/dockerconfigjson",
            "engineVersion": "v2",
            "data": {".dockerconfigjson": config.to_string()},
        },
    });
    let data = ["username", "password"]
        .iter()
        .map(|k| {
            let r = RemoteRef {
                property: Some(k.to_string()),
                ..remote.clone()
            };
            json!({"secretKey": k, "remoteRef": remote_ref_json(&r)})
        })
        .collect();
    Some(external_secret(ctx, &name, &store, target, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(key: &str, property: Option<&str>, version: Option<&str>) -> RemoteRef {
        RemoteRef {
            provider: Provider::SecretsManager,
            key: key.into(),
            property: property.map(Into::into),
            version: version.map(Into::into),
        }
    }

    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf";

    #[test]
    fn a_secrets_manager_arn_is_the_key() {
        assert_eq!(parse_value_from(SECRET), Ok(sm(SECRET, None, None)));
    }

    #[test]
    fn the_json_key_version_stage_and_version_id_suffix_maps_to_property_and_version() {
        let v = |suffix: &str| parse_value_from(&format!("{SECRET}:{suffix}"));
        assert_eq!(v("password::"), Ok(sm(SECRET, Some("password"), None)));
        assert_eq!(v("password:AWSPREVIOUS:"), Ok(sm(SECRET, Some("password"), Some("AWSPREVIOUS"))));
        assert_eq!(v(":AWSCURRENT:"), Ok(sm(SECRET, None, Some("AWSCURRENT"))));
        assert_eq!(
            v("::9d7c8f1e-0000-4a8b-b1c2-1234567890ab"),
            Ok(sm(SECRET, None, Some("uuid/9d7c8f1e-0000-4a8b-b1c2-1234567890ab")))
        );
        assert_eq!(v("password"), Ok(sm(SECRET, Some("password"), None)));
        assert!(v("k:AWSCURRENT:id").is_err(), "a stage and an id at once");
        assert!(v("a:b:c:d").is_err());
    }

    #[test]
    fn cross_account_and_other_partitions_keep_the_whole_arn() {
        let arn = "arn:aws-cn:secretsmanager:cn-north-1:444455556666:secret:shared-Xy12Zq";
        assert_eq!(parse_value_from(arn), Ok(sm(arn, None, None)));
    }

    #[test]
    fn ssm_parameters_by_arn_or_by_name() {
        let arn = "arn:aws:ssm:eu-west-1:111122223333:parameter/app/db/password";
        let ps = |k: &str| RemoteRef {
            provider: Provider::ParameterStore,
            key: k.into(),
            property: None,
            version: None,
        };
        assert_eq!(parse_value_from(arn), Ok(ps(arn)));
        assert_eq!(parse_value_from("/app/db/password"), Ok(ps("/app/db/password")));
        assert_eq!(parse_value_from("db-password"), Ok(ps("db-password")));
        assert!(parse_value_from("arn:aws:ssm:eu-west-1:1:document/x").is_err());
        assert!(parse_value_from("arn:aws:s3:::bucket/key").is_err());
        assert!(parse_value_from("").is_err());
    }

    #[test]
    fn registry_credentials_are_a_whole_secret_by_arn_or_name() {
        assert_eq!(parse_credentials_parameter(SECRET), Ok(sm(SECRET, None, None)));
        assert_eq!(parse_credentials_parameter("dockerhub"), Ok(sm("dockerhub", None, None)));
        assert!(parse_credentials_parameter(&format!("{SECRET}:password::")).is_err());
        assert!(parse_credentials_parameter("arn:aws:ssm:us-east-1:1:parameter/x").is_err());
    }

    #[test]
    fn registry_hosts_as_docker_config_keys() {
        assert_eq!(registry_host("registry.example.com/team/app:1"), "registry.example.com");
        assert_eq!(registry_host("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_host("team/app"), "https://index.docker.io/v1/");
        assert_eq!(registry_host("nginx"), "https://index.docker.io/v1/");
    }

    #[test]
    fn store_references_from_flags() {
        assert_eq!(
            StoreRef::parse("aws-sm"),
            Ok(StoreRef {
                name: "aws-sm".into(),
                kind: "ClusterSecretStore".into()
            })
        );
        assert_eq!(StoreRef::parse("SecretStore/aws").map(|s| s.kind), Ok("SecretStore".into()));
        assert!(StoreRef::parse("Store/aws").is_err());
        assert!(StoreRef::parse("ClusterSecretStore/").is_err());
        assert!(StoreRef::parse("Bad_Name").is_err());
    }
}
