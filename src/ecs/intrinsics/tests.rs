//! Unit tests of every intrinsic function and error case.

use super::*;
use crate::diag::{Code, Diagnostic};
use serde_json::json;

fn stack(parameters: Value, conditions: Value) -> Stack {
    let mut report = Report::default();
    let s = Stack::from_sections(Some(&parameters), Some(&conditions), None, Path::root().key("spec"), &mut report);
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    s
}

fn params(parameters: Value) -> Stack {
    stack(parameters, json!({}))
}

/// Evaluates `{"P": value}` at `Task.Properties`; returns P's value (None when removed) and the diagnostics.
fn eval_with(value: Value, s: &Stack) -> (Option<Value>, Vec<Diagnostic>) {
    let mut report = Report::default();
    let (out, _) = evaluate(&json!({ "P": value }), &Path::parse_dotted("Task.Properties"), s, &mut report);
    (out.get("P").cloned(), report.diagnostics)
}

fn ok(value: Value, s: &Stack) -> Value {
    let (v, diags) = eval_with(value, s);
    assert!(diags.is_empty(), "{diags:?}");
    v.expect("a value")
}

fn only_error(value: Value, s: &Stack) -> Diagnostic {
    let (_, diags) = eval_with(value, s);
    assert_eq!(diags.len(), 1, "{diags:?}");
    diags.into_iter().next().unwrap()
}

#[test]
fn ref_reads_parameters_of_every_type() {
    let s = params(json!({"Cpu": 256, "Image": "nginx", "Subnets": ["a", "b"], "Flag": true}));
    assert_eq!(ok(json!({"Ref": "Cpu"}), &s), json!(256));
    assert_eq!(ok(json!({"Ref": "Image"}), &s), json!("nginx"));
    assert_eq!(ok(json!({"Ref": "Subnets"}), &s), json!(["a", "b"]));
    assert_eq!(ok(json!({"Ref": "Flag"}), &s), json!(true));
}

#[test]
fn pseudo_parameters_are_supplied_and_partition_and_suffix_default_from_the_region() {
    let s = params(json!({"AWS::Region": "cn-north-1", "AWS::AccountId": "123456789012", "AWS::StackName": "st"}));
    assert_eq!(ok(json!({"Ref": "AWS::Region"}), &s), json!("cn-north-1"));
    assert_eq!(ok(json!({"Ref": "AWS::Partition"}), &s), json!("aws-cn"));
    assert_eq!(ok(json!({"Ref": "AWS::URLSuffix"}), &s), json!("amazonaws.com.cn"));
    assert_eq!(
        ok(
            json!({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}"}),
            &s
        ),
        json!("arn:aws-cn:iam::123456789012:role/st")
    );
    assert_eq!(ok(json!({"Ref": "AWS::Partition"}), &params(json!({}))), json!("aws"));
    assert_eq!(ok(json!({"Ref": "AWS::URLSuffix"}), &params(json!({}))), json!("amazonaws.com"));
}

#[test]
fn no_value_removes_the_property_and_list_items() {
    let s = stack(json!({}), json!({"Yes": true, "No": false}));
    let (v, diags) = eval_with(json!({"Ref": "AWS::NoValue"}), &s);
    assert_eq!((v, diags), (None, vec![]));
    let (v, _) = eval_with(json!({"Fn::If": ["No", "x", {"Ref": "AWS::NoValue"}]}), &s);
    assert_eq!(v, None);
    assert_eq!(
        ok(json!(["a", {"Fn::If": ["No", "b", {"Ref": "AWS::NoValue"}]}, "c"]), &s),
        json!(["a", "c"])
    );
    assert_eq!(
        ok(json!({"Fn::Join": [",", ["a", {"Ref": "AWS::NoValue"}, "b"]]}), &s),
        json!("a,b")
    );
}

#[test]
fn sub_both_forms_getatt_keys_and_escapes() {
    let s = params(json!({"Env": "prod", "Db.Endpoint.Address": "db.local", "Port": 5432}));
    assert_eq!(ok(json!({"Fn::Sub": "${Env}-app"}), &s), json!("prod-app"));
    assert_eq!(ok(json!({"Fn::Sub": "${Db.Endpoint.Address}:${Port}"}), &s), json!("db.local:5432"));
    assert_eq!(ok(json!({"Fn::Sub": "${!Literal} and ${ Env }"}), &s), json!("${Literal} and prod"));
    assert_eq!(
        ok(
            json!({"Fn::Sub": ["redis://${Host}:6379/${Env}", {"Host": {"Fn::Join": [".", ["cache", {"Ref": "Env"}]]}}]}),
            &s
        ),
        json!("redis://cache.prod:6379/prod")
    );
    let e = only_error(json!({"Fn::Sub": ["${L}", {"L": ["a"]}]}), &s);
    assert!(e.message.contains("`${L}` in Fn::Sub is not a string"), "{e:?}");
}

#[test]
fn getatt_both_forms() {
    let s = params(json!({"Role.Arn": "arn:aws:iam::1:role/r", "Attr": "Arn"}));
    assert_eq!(ok(json!({"Fn::GetAtt": ["Role", "Arn"]}), &s), json!("arn:aws:iam::1:role/r"));
    assert_eq!(ok(json!({"Fn::GetAtt": "Role.Arn"}), &s), json!("arn:aws:iam::1:role/r"));
    assert_eq!(
        ok(json!({"Fn::GetAtt": ["Role", {"Ref": "Attr"}]}), &s),
        json!("arn:aws:iam::1:role/r")
    );
}

#[test]
fn import_value_looks_up_the_evaluated_export_name() {
    let s = params(json!({"StackName": "net", "net:Subnet": "subnet-1"}));
    assert_eq!(
        ok(
            json!({"Fn::ImportValue": {"Fn::Join": [":", [{"Ref": "StackName"}, "Subnet"]]}}),
            &s
        ),
        json!("subnet-1")
    );
    assert_eq!(
        ok(json!({"Fn::ImportValue": {"Fn::Sub": "${StackName}:Subnet"}}), &s),
        json!("subnet-1")
    );
}

#[test]
fn join_select_split_base64_length_and_to_json_string() {
    let s = params(json!({"Ids": ["subnet-a", "subnet-b"], "Csv": "x,y,z", "Cmd": "nginx -g daemon_off;"}));
    assert_eq!(ok(json!({"Fn::Join": ["-", ["a", 1, true]]}), &s), json!("a-1-true"));
    assert_eq!(ok(json!({"Fn::Join": [",", {"Ref": "Ids"}]}), &s), json!("subnet-a,subnet-b"));
    assert_eq!(ok(json!({"Fn::Select": [1, {"Ref": "Ids"}]}), &s), json!("subnet-b"));
    assert_eq!(
        ok(json!({"Fn::Select": ["0", {"Fn::Split": [",", {"Ref": "Csv"}]}]}), &s),
        json!("x")
    );
    assert_eq!(
        ok(json!({"Fn::Split": [" ", {"Ref": "Cmd"}]}), &s),
        json!(["nginx", "-g", "daemon_off;"])
    );
    assert_eq!(ok(json!({"Fn::Base64": "hello"}), &s), json!("aGVsbG8="));
    assert_eq!(ok(json!({"Fn::Length": {"Ref": "Ids"}}), &s), json!(2));
    assert_eq!(
        ok(json!({"Fn::ToJsonString": {"a": {"Ref": "Csv"}}}), &s),
        json!("{\"a\":\"x,y,z\"}")
    );
    let e = only_error(json!({"Fn::Select": [5, {"Ref": "Ids"}]}), &s);
    assert_eq!((e.code, e.message.as_str()), (Code::Invalid, "Fn::Select index out of range"));
}

#[test]
fn find_in_map_with_mappings_and_a_default() {
    let mut report = Report::default();
    let s = Stack::from_sections(
        Some(&json!({"AWS::Region": "eu-west-1"})),
        None,
        Some(&json!({"Sizes": {"eu-west-1": {"Cpu": 512}}})),
        Path::root().key("spec"),
        &mut report,
    );
    assert_eq!(
        ok(json!({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Cpu"]}), &s),
        json!(512)
    );
    assert_eq!(
        ok(json!({"Fn::FindInMap": ["Sizes", "us-east-1", "Cpu", {"DefaultValue": 256}]}), &s),
        json!(256)
    );
    let e = only_error(json!({"Fn::FindInMap": ["Sizes", "us-east-1", "Cpu"]}), &s);
    assert_eq!(e.code, Code::Unresolved);
    assert!(e.message.contains("spec.Mappings: add Sizes.us-east-1.Cpu"), "{e:?}");
}

#[test]
fn get_azs_reads_a_parameter_and_cidr_computes_blocks() {
    let s = params(json!({"AWS::Region": "us-east-1", "Fn::GetAZs": ["us-east-1a", "us-east-1b"], "Fn::GetAZs.eu-west-1": ["eu-west-1a"]}));
    assert_eq!(ok(json!({"Fn::Select": [0, {"Fn::GetAZs": ""}]}), &s), json!("us-east-1a"));
    assert_eq!(
        ok(json!({"Fn::GetAZs": {"Ref": "AWS::Region"}}), &s),
        json!(["us-east-1a", "us-east-1b"])
    );
    assert_eq!(ok(json!({"Fn::GetAZs": "eu-west-1"}), &s), json!(["eu-west-1a"]));
    assert_eq!(
        ok(json!({"Fn::Cidr": ["10.0.0.0/16", 3, 8]}), &s),
        json!(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"])
    );
    let e = only_error(json!({"Fn::Cidr": ["10.0.0.0/24", 4, 8]}), &s);
    assert!(e.message.contains("wrong arguments for `Fn::Cidr`"), "{e:?}");
}

#[test]
fn conditions_booleans_expressions_and_references() {
    let s = stack(
        json!({"Env": "prod", "Count": 3}),
        json!({
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "IsThree": {"Fn::Equals": [{"Ref": "Count"}, "3"]},
            "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "IsThree"}]},
            "Either": {"Fn::Or": [false, {"Fn::Not": [{"Condition": "IsProd"}]}]},
            "Literal": "true",
        }),
    );
    assert_eq!(ok(json!({"Fn::If": ["IsProd", "p", "d"]}), &s), json!("p"));
    assert_eq!(ok(json!({"Fn::If": ["Both", "y", "n"]}), &s), json!("y"));
    assert_eq!(ok(json!({"Fn::If": ["Either", "y", "n"]}), &s), json!("n"));
    assert_eq!(ok(json!({"Fn::If": ["Literal", "y", "n"]}), &s), json!("y"));
    // Nested in arguments.
    assert_eq!(
        ok(json!({"Fn::Join": ["", ["a", {"Fn::If": ["IsProd", "b", "c"]}]]}), &s),
        json!("ab")
    );
}

#[test]
fn condition_cycles_are_errors() {
    let s = stack(json!({}), json!({"A": {"Condition": "B"}, "B": {"Fn::Not": [{"Condition": "A"}]}}));
    let e = only_error(json!({"Fn::If": ["A", 1, 2]}), &s);
    assert_eq!(e.code, Code::Invalid);
    assert!(e.message.contains("cycle: A -> B -> A"), "{e:?}");
    assert_eq!(e.path, "spec.Conditions.A");
}

#[test]
fn ill_formed_conditions_are_errors() {
    let s = stack(json!({}), json!({"Bad": {"Fn::And": [true]}, "Odd": 3}));
    let e = only_error(json!({"Fn::If": ["Bad", 1, 2]}), &s);
    assert!(e.message.contains("wrong condition `Fn::And`"), "{e:?}");
    let e = only_error(json!({"Fn::If": ["Odd", 1, 2]}), &s);
    assert_eq!(e.message, "not a condition");
    let e = only_error(json!({"Fn::Equals": ["a", "a"]}), &s);
    assert!(e.message.contains("is a condition function"), "{e:?}");
}

#[test]
fn unknown_intrinsics_and_wrong_shapes_are_clear_errors() {
    let s = params(json!({"X": "x"}));
    let e = only_error(json!({"Fn::Joinn": ["", ["a"]]}), &s);
    assert_eq!(e.code, Code::NotSupported);
    assert_eq!(e.message, "unsupported intrinsic function `Fn::Joinn`; did you mean `Fn::Join`?");
    assert_eq!(e.path, "Task.Properties.P");
    for (bad, function) in [
        (json!({"Ref": ["X"]}), "Ref"),
        (json!({"Fn::Join": ","}), "Fn::Join"),
        (json!({"Fn::Join": [",", "notalist"]}), "Fn::Join"),
        (json!({"Fn::Select": [0]}), "Fn::Select"),
        (json!({"Fn::Select": ["first", ["a"]]}), "Fn::Select"),
        (json!({"Fn::Split": ["", "a"]}), "Fn::Split"),
        (json!({"Fn::Sub": 3}), "Fn::Sub"),
        (json!({"Fn::GetAtt": "NoDot"}), "Fn::GetAtt"),
        (json!({"Fn::If": ["C", 1]}), "Fn::If"),
        (json!({"Fn::FindInMap": ["M", "T"]}), "Fn::FindInMap"),
        (json!({"Fn::ImportValue": ["a"]}), "Fn::ImportValue"),
        (json!({"Fn::Base64": {"a": 1}}), "Fn::Base64"),
    ] {
        let e = only_error(bad.clone(), &s);
        assert_eq!(e.code, Code::Invalid, "{bad}: {e:?}");
        assert_eq!(e.message, format!("wrong arguments for `{function}`"), "{bad}");
    }
}

#[test]
fn every_missing_name_is_listed_once_with_each_use_and_the_key_to_add() {
    let s = stack(json!({"Env": "prod"}), json!({}));
    let body = json!({
        "Cpu": {"Ref": "ContainerCpu"},
        "Memory": {"Fn::Sub": "${ContainerMemory}"},
        "Containers": [{"Cpu": {"Ref": "ContainerCpu"}, "Role": {"Fn::If": ["HasRole", "r", {"Ref": "AWS::NoValue"}]}}],
        "Region": {"Fn::Sub": "${AWS::Region}-${Env}"},
        "Export": {"Fn::ImportValue": {"Fn::Sub": "${Env}:Cluster"}},
    });
    let mut report = Report::default();
    let (out, _) = evaluate(&body, &Path::parse_dotted("spec.Task.Properties"), &s, &mut report);
    assert_eq!(report.diagnostics.len(), 1, "{:?}", report.diagnostics);
    let d = &report.diagnostics[0];
    assert_eq!((d.code, d.path.as_str()), (Code::Unresolved, "spec.Task.Properties.Cpu"));
    assert_eq!(
        d.message,
        "CloudFormation intrinsic functions cannot be resolved without these values: spec.Parameters: add \
         ContainerCpu (used at spec.Task.Properties.Cpu, spec.Task.Properties.Containers[0].Cpu), \
         ContainerMemory (used at spec.Task.Properties.Memory), \"AWS::Region\" (used at spec.Task.Properties.Region), \
         \"prod:Cluster\" (used at spec.Task.Properties.Export); spec.Conditions: add HasRole (used at spec.Task.Properties.Containers[0].Role)"
    );
    assert_eq!(
        d.expected,
        "values for spec.Parameters.ContainerCpu, spec.Parameters.ContainerMemory, spec.Parameters[\"AWS::Region\"], \
         spec.Parameters[\"prod:Cluster\"], spec.Conditions.HasRole"
    );
    assert_eq!(d.found, "5 missing names");
    // What cannot be resolved stays as written.
    assert_eq!(out["Cpu"], json!({"Ref": "ContainerCpu"}));
}

#[test]
fn missing_values_listing_is_bounded() {
    let body: Map<String, Value> = (0..200).map(|i| (format!("K{i}"), json!({"Ref": format!("P{i}")}))).collect();
    let mut report = Report::default();
    evaluate(&Value::Object(body), &Path::root(), &Stack::default(), &mut report);
    assert_eq!(report.diagnostics.len(), 1);
    let d = &report.diagnostics[0];
    assert!(d.message.ends_with("; and 150 more names"), "{}", d.message);
    assert_eq!(d.found, "200 missing names");
}

#[test]
fn nesting_is_bounded() {
    let mut v = json!({"Ref": "X"});
    for _ in 0..40 {
        v = json!({"Fn::Base64": v});
    }
    let e = only_error(v, &params(json!({"X": "x"})));
    assert!(e.message.contains("nest more than 32 levels"), "{e:?}");
}

#[test]
fn output_size_is_bounded() {
    // A 64 KiB parameter used 20 times: more than 1 MiB.
    let big = "x".repeat(64 * 1024);
    let s = params(json!({ "Big": big }));
    let many: Vec<Value> = (0..20).map(|_| json!({"Ref": "Big"})).collect();
    let (_, diags) = eval_with(json!({"Fn::Join": ["", many]}), &s);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].message.contains("more than 1024 KiB"), "{diags:?}");
}

#[test]
fn provenance_points_into_the_chosen_branch_and_names_the_parameter() {
    let s = stack(
        json!({"EnvFile": "arn:aws:s3:::b/f.env", "Image": "nginx"}),
        json!({"Has": true, "No": false}),
    );
    let body = json!({
        "Files": [
            {"Fn::If": ["No", "x", {"Ref": "AWS::NoValue"}]},
            {"Fn::If": ["Has", {"Type": "s3", "Value": {"Ref": "EnvFile"}}, {"Ref": "AWS::NoValue"}]},
        ],
        "Image": {"Ref": "Image"},
    });
    let mut report = Report::default();
    let (out, prov) = evaluate(&body, &Path::parse_dotted("spec.Task.Properties"), &s, &mut report);
    assert!(report.diagnostics.is_empty());
    assert_eq!(out["Files"], json!([{"Type": "s3", "Value": "arn:aws:s3:::b/f.env"}]));
    // Evaluated Files[0] is the second item the user wrote, inside its Fn::If's true branch.
    assert_eq!(
        prov.written("spec.Task.Properties.Files[0].Value"),
        "spec.Task.Properties.Files[1][\"Fn::If\"][1].Value"
    );
    assert_eq!(
        prov.note("spec.Task.Properties.Files[1][\"Fn::If\"][1].Value"),
        Some("from spec.Parameters.EnvFile")
    );
    assert_eq!(prov.written("spec.Task.Properties.Image"), "spec.Task.Properties.Image");
    assert_eq!(prov.note("spec.Task.Properties.Image"), Some("from spec.Parameters.Image"));
}

#[test]
fn parameter_files_in_three_forms() {
    let mut report = Report::default();
    let sections = Stack::from_file_value(
        &json!({"Parameters": {"A": 1}, "Conditions": {"C": true}, "Mappings": {"M": {"t": {"s": "v"}}}}),
        Path::root(),
        &mut report,
    );
    assert_eq!(sections.parameters["A"], json!(1));
    assert_eq!(sections.conditions["C"], json!(true));
    let plain = Stack::from_file_value(&json!({"A": "x"}), Path::root(), &mut report);
    assert_eq!(plain.parameters["A"], json!("x"));
    let aws = Stack::from_file_value(&json!([{"ParameterKey": "A", "ParameterValue": "y"}]), Path::root(), &mut report);
    assert_eq!(aws.parameters["A"], json!("y"));
    assert!(report.diagnostics.is_empty());
    Stack::from_file_value(&json!({"Parameters": {"Bad": {"x": 1}}, "Extra": 1}), Path::root(), &mut report);
    let paths: Vec<&str> = report.diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["Extra", "Parameters.Bad"]);
}

#[test]
fn merged_values_win_and_keep_their_source() {
    let mut base = params(json!({"A": 1, "B": 2}));
    let mut over = Stack::default();
    over.parameters.insert("B".into(), json!(3));
    over.sources.insert("B".into(), "--param B".into());
    base.merge(&over);
    assert_eq!(base.parameters["B"], json!(3));
    assert_eq!(base.source("B"), "--param B");
    assert_eq!(base.source("A"), "spec.Parameters.A");
}

#[test]
fn rendered_path_prefixes_respect_quoted_keys() {
    assert_eq!(cuts("a.b[0][\"x.y\"].c"), vec![1, 3, 6, 13, 15]);
}
