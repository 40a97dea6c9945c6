//! The Kubernetes manifests parse, say what matters (an Indexed Job of N = completions =
//! parallelism = ORBATCH_SHARDS shards, the key from a Secret, one shared volume, a retry per
//! index) and run the commands deploy/kubernetes/README.md shows. No cluster runs here.

use serde_json::Value;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one container of a Job's pod template.
fn container(job: &Value) -> &Value {
    let list = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 1);
    &list[0]
}

/// The claim of the volume mounted at /data.
fn data_claim(job: &Value) -> String {
    let c = container(job);
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/data")
        .unwrap();
    let name = &mount["name"];
    let volumes = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let v = volumes.iter().find(|v| &v["name"] == name).unwrap();
    v["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap()
        .to_string()
}

fn command(job: &Value) -> Vec<String> {
    container(job)["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn env<'a>(job: &'a Value, name: &str) -> &'a Value {
    container(job)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

#[test]
fn the_indexed_job_and_the_merge_parse_and_match_the_readme() {
    let shards = yaml("deploy/kubernetes/shards-job.yaml");
    let merge = yaml("deploy/kubernetes/merge-job.yaml");
    let volume = yaml("deploy/kubernetes/volume.yaml");
    let readme = std::fs::read_to_string(repo("deploy/kubernetes/README.md")).unwrap();

    assert_eq!(
        (shards["kind"].as_str(), merge["kind"].as_str()),
        (Some("Job"), Some("Job"))
    );
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    assert_eq!(
        env(&shards, "ORBATCH_SHARDS")["value"].as_str(),
        Some(n.to_string().as_str())
    );
    assert!(spec["backoffLimitPerIndex"].as_u64().unwrap() >= 1);
    let key = &env(&shards, "OPENROUTER_API_KEY")["valueFrom"]["secretKeyRef"];
    assert_eq!(key["key"], "OPENROUTER_API_KEY");
    assert!(readme.contains(&format!(
        "kubectl create secret generic {}",
        key["name"].as_str().unwrap()
    )));

    // One ReadWriteMany volume, mounted by the shards and the merge.
    assert_eq!(volume["kind"], "PersistentVolumeClaim");
    assert!(
        volume["spec"]["accessModes"]
            .as_array()
            .unwrap()
            .contains(&"ReadWriteMany".into())
    );
    let claim = volume["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        (data_claim(&shards), data_claim(&merge)),
        (claim.to_string(), claim.to_string())
    );

    // The commands are the README's, and they shard and merge the same output dir.
    let run = command(&shards);
    assert_eq!(run[..2], ["sh", "-c"]);
    assert!(run[2].contains("orbatch run job.toml --shard auto"));
    assert!(
        readme.contains(&format!("`sh -c '{}'`", run[2])),
        "README shows {}",
        run[2]
    );
    let merge_cmd = command(&merge).join(" ");
    assert!(merge_cmd.starts_with("orbatch merge "));
    assert!(
        readme.contains(&format!("`{merge_cmd}`")),
        "README shows {merge_cmd}"
    );
    let out_dir = merge_cmd.trim_start_matches("orbatch merge ");
    assert!(readme.contains(&format!("output_dir = \"{out_dir}\"")));
    for file in ["volume.yaml", "shards-job.yaml", "merge-job.yaml"] {
        assert!(
            readme.contains(&format!("kubectl apply -f deploy/kubernetes/{file}")),
            "{file}"
        );
    }
    for name in [&shards, &merge].map(|j| j["metadata"]["name"].as_str().unwrap()) {
        assert!(readme.contains(&format!("job/{name}")), "{name}");
    }
}

/// The shard pods' variables, given to N local processes, split the job as `--shard K/N`
/// does: the same partition the Indexed Job gets.
#[test]
fn the_pods_variables_pick_the_shard() {
    let shards = yaml("deploy/kubernetes/shards-job.yaml");
    let n = env(&shards, "ORBATCH_SHARDS")["value"]
        .as_str()
        .unwrap()
        .to_string();
    let count: u32 = n.parse().unwrap();
    for k in 0..count {
        let vars = |name: &str| match name {
            "JOB_COMPLETION_INDEX" => Some(k.to_string()),
            "ORBATCH_SHARDS" => Some(n.clone()),
            _ => None,
        };
        let found = orbatch::shard::engines::detect(vars).unwrap();
        assert_eq!(found.shard, orbatch::shard::Shard::new(k, count).unwrap());
    }
}
