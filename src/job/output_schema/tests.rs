use super::super::{Job, Overrides};
use super::*;

const SCHEMA: &str = r#"{"type":"object","properties":{"sentiment":{"enum":["positive","negative","neutral"]},"ok":{"type":"boolean"}},"required":["sentiment","ok"],"additionalProperties":false}"#;

fn job(toml: &str, files: &[(&str, &str)], o: Overrides) -> Result<Job, JobError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let p = dir.path().join("j.toml");
    std::fs::write(&p, format!("name = \"rev iew\"\ninput = \"d.csv\"\n{toml}")).unwrap();
    Job::resolve(Some(&p), o, None)
}

#[test]
fn a_schema_file_becomes_response_format_and_require_parameters() {
    let toml = "[request]\nmodels=[\"a/b\"]\nextra = { provider = { sort = \"price\" } }\n[output]\nschema = \"schemas/r.json\"\n";
    let j = job(toml, &[("schemas/r.json", SCHEMA)], Overrides::default()).unwrap();
    let spec = j.output.as_ref().unwrap();
    assert_eq!(spec.name, "rev_iew");
    assert!(spec.strict);
    assert_eq!(spec.schema_retries, 2);
    assert_eq!(spec.mode, SchemaMode::ResponseFormat);
    let rf = &j.request.extra["response_format"];
    assert_eq!(rf["type"], "json_schema");
    assert_eq!(rf["json_schema"]["name"], "rev_iew");
    assert_eq!(rf["json_schema"]["strict"], true);
    assert_eq!(rf["json_schema"]["schema"]["required"][0], "sentiment");
    assert_eq!(
        j.request.extra["provider"],
        json!({"sort": "price", "require_parameters": true})
    );
}

#[test]
fn inline_tables_flags_and_prompt_mode() {
    let toml = "[request]\nsystem = \"Be brief.\"\n[output]\nmode = \"prompt\"\nname = \"lbl\"\nstrict = false\nschema_retries = 1\nrequire_parameters = false\n[output.schema]\ntype = \"object\"\n[output.schema.properties]\nzeta = { type = \"string\" }\nalpha = { type = \"boolean\" }\n";
    let o = Overrides {
        output: OutputOverrides {
            schema: None,
            schema_retries: Some(4),
        },
        ..Overrides::default()
    };
    let j = job(toml, &[], o).unwrap();
    let spec = j.output.as_ref().unwrap();
    assert_eq!(spec.schema_retries, 4, "the flag beats the file");
    let names: Vec<&str> = spec
        .compiled
        .properties()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["zeta", "alpha"], "the written order");
    assert!(!j.request.extra.contains_key("response_format"));
    assert!(!j.request.extra.contains_key("provider"));
    let system = j.request.system.as_deref().unwrap();
    assert!(
        system.starts_with("Be brief.\n\nAnswer with only a JSON object"),
        "{system}"
    );
    assert!(system.contains("{% raw %}{"), "{system}");
}

#[test]
fn the_schema_flag_needs_no_output_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.json");
    std::fs::write(&s, SCHEMA).unwrap();
    let o = Overrides {
        output: OutputOverrides {
            schema: Some(s),
            schema_retries: None,
        },
        ..Overrides::default()
    };
    let j = job("", &[], o).unwrap();
    assert!(j.request.extra.contains_key("response_format"));
}

#[test]
fn bad_schemas_are_config_errors_naming_the_file() {
    let toml = "[output]\nschema = \"bad.json\"\n";
    let err = job(
        toml,
        &[("bad.json", r#"{"type": 12}"#)],
        Overrides::default(),
    )
    .unwrap_err()
    .0;
    assert!(err.contains("bad.json: not a valid JSON Schema"), "{err}");
    let err = job(toml, &[("bad.json", "{ nope")], Overrides::default())
        .unwrap_err()
        .0;
    assert!(
        err.contains("bad.json:1: the schema file is not JSON"),
        "{err}"
    );
    let err = job(toml, &[], Overrides::default()).unwrap_err().0;
    assert!(
        err.contains("bad.json: cannot read the schema file"),
        "{err}"
    );
    let err = job("[output]\nstrict = true\n", &[], Overrides::default())
        .unwrap_err()
        .0;
    assert!(err.contains("[output] needs `schema`"), "{err}");
    let err = job(
        "[output]\nschema = \"s.json\"\nsurprise = 1\n",
        &[],
        Overrides::default(),
    )
    .unwrap_err()
    .0;
    assert!(err.contains("surprise"), "{err}");
}
