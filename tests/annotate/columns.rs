//! results.csv's `output.<property>` columns: schema order, arrays and objects as JSON text,
//! formula escaping.

use serde_json::Value;

use crate::support::*;

const NESTED: &str = r#"{
  "type": "object",
  "properties": {
    "zeta": {"type": "string"},
    "alpha": {"type": "object", "properties": {"lang": {"enum": ["en", "fr"]}, "n": {"type": "integer", "minimum": 1, "maximum": 3}},
              "required": ["lang", "n"], "additionalProperties": false},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
    "flag": {"type": "boolean"}
  },
  "required": ["zeta", "alpha", "tags", "flag"],
  "additionalProperties": false
}"#;

#[test]
fn nested_schemas_get_columns_in_schema_order_with_formula_escaping() {
    let wd = Workdir::new();
    let mock = Mock::plain();
    wd.create(
        "in.csv",
        "id,text\n1,=HYPERLINK(\"x\") lovely phone\n2,plain words here\n",
    );
    wd.create("nested.json", NESTED);
    let args = [
        "--input",
        "in.csv",
        "--schema",
        "nested.json",
        "--prompt",
        "{{ text }}",
        "--model",
        MINI,
    ];
    wd.run(&mock, &args).assert().code(0);
    let csv = wd.csv("out/in");
    let header = &csv[0];
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    assert_eq!(
        &header[at("output")..at("output") + 5],
        [
            "output",
            "output.zeta",
            "output.alpha",
            "output.tags",
            "output.flag"
        ]
    );
    assert_eq!(header[at("output.flag") + 1], "cost_usd");
    let lines = wd.results("out/in");
    for row in &csv[1..] {
        let line = lines.iter().find(|l| l.id == row[0]).unwrap();
        let parsed: Value =
            serde_json::from_str(line.parsed.as_ref().unwrap().as_ref().unwrap().get()).unwrap();
        let zeta = parsed["zeta"].as_str().unwrap();
        if zeta.starts_with('=') {
            assert_eq!(row[at("output.zeta")], format!("'{zeta}"), "escaped");
        } else {
            assert_eq!(row[at("output.zeta")], zeta);
        }
        let alpha: Value = serde_json::from_str(&row[at("output.alpha")]).unwrap();
        assert_eq!(alpha, parsed["alpha"], "objects as JSON text");
        let tags: Value = serde_json::from_str(&row[at("output.tags")]).unwrap();
        assert_eq!(tags, parsed["tags"], "arrays as JSON text");
        assert_eq!(row[at("output.flag")], parsed["flag"].to_string());
    }
    assert!(
        csv[1][at("output.zeta")].starts_with("'=HYPERLINK"),
        "{:?}",
        csv[1]
    );
}
