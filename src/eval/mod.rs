//! Evaluation: the checks of a job scored on each result line ([`Scorer`]), and the
//! leaderboard of (variant, model) cells built from the lines ([`cells`]).
//!
//! A [`Scorer`] is compiled once per job from its [`EvalSpec`]: templates, regexes and JSON
//! Schemas. Compiling is also the config check: a check that cannot be evaluated is refused
//! before anything is sent. Scoring a line is pure (no I/O) except for `judge` checks, whose
//! grades are asked for by [`judge`] and handed in.

pub mod cells;
pub mod checks;
pub mod judge;
pub mod rescore;
pub mod schema;
pub mod stats;
pub mod table;

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::job::{CheckKind, CheckSpec, EvalSpec};
use crate::output::{ResultLine, Status};
use checks::Norm;
use schema::Schema;

/// The template variables every eval template may use besides the row's columns.
pub const BUILT_INS: [&str; 3] = ["output", "expected", "row"];
/// The template of `[eval] expected`.
const EXPECTED: &str = "expected";

/// One check, compiled.
#[derive(Debug)]
enum Compiled {
    /// equals / contains / not_contains / number / judge: the value (or rubric) template.
    Template,
    /// one_of.
    Values(Vec<String>),
    /// regex.
    Regex(regex::Regex),
    /// json_valid.
    Json,
    /// json_schema.
    Schema(Box<Schema>),
    /// max_cost_usd / max_latency_ms: nothing to compile.
    Limit,
}

/// The compiled checks of a job.
pub struct Scorer {
    spec: EvalSpec,
    env: Environment<'static>,
    compiled: Vec<Compiled>,
    /// (check name, variable) of every column an eval template reads.
    variables: Vec<(String, String)>,
    /// The judge's `{score, reason}` schema, compiled.
    judge_schema: Schema,
}

/// What scoring a line gave.
#[derive(Debug, Clone, PartialEq)]
pub struct LineScore {
    /// Each check's score (`None`: it could not be scored).
    pub scores: BTreeMap<String, Option<f64>>,
    /// The weighted mean of the counted checks (`None`: no check has weight).
    pub score: Option<f64>,
    /// `score >= threshold` and no counted check unscored.
    pub pass: bool,
    /// Why each unscored check could not be scored.
    pub unscored: BTreeMap<String, String>,
}

impl Scorer {
    /// Compiles every check of `spec`; `Err` names the job file and the check.
    pub fn compile(spec: &EvalSpec) -> Result<Scorer, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(crate::template::RENDER_FUEL));
        let mut variables = Vec::new();
        let mut add = |env: &mut Environment<'static>, name: String, source: &str, owner: &str| {
            env.add_template_owned(name.clone(), source.to_owned())
                .map_err(|e| format!("{}: check \"{owner}\": template: {e}", spec.file))?;
            let vars = env
                .get_template(&name)
                .map_err(|e| format!("{}: check \"{owner}\": template: {e}", spec.file))?
                .undeclared_variables(false);
            for v in vars {
                if !BUILT_INS.contains(&v.as_str()) {
                    variables.push((owner.to_string(), v));
                }
            }
            Ok::<(), String>(())
        };
        if let Some(e) = &spec.expected {
            add(&mut env, EXPECTED.into(), e, "[eval] expected")?;
        }
        let mut compiled = Vec::new();
        for c in &spec.checks {
            let fail = |why: String| format!("{}: check \"{}\": {why}", spec.file, c.name);
            compiled.push(match &c.kind {
                CheckKind::Equals(v) | CheckKind::Contains(v) | CheckKind::NotContains(v) => {
                    add(&mut env, template_name(c), v, &c.name)?;
                    Compiled::Template
                }
                CheckKind::Number { value, .. } => {
                    add(&mut env, template_name(c), value, &c.name)?;
                    Compiled::Template
                }
                CheckKind::Judge { rubric, .. } => {
                    add(&mut env, template_name(c), rubric, &c.name)?;
                    Compiled::Template
                }
                CheckKind::OneOf(values) => Compiled::Values(values.clone()),
                CheckKind::Regex(p) => Compiled::Regex(
                    regex::Regex::new(p).map_err(|e| fail(format!("bad regex: {e}")))?,
                ),
                CheckKind::JsonValid => Compiled::Json,
                CheckKind::JsonSchema(s) => {
                    Compiled::Schema(Box::new(Schema::compile(s).map_err(fail)?))
                }
                CheckKind::MaxCostUsd(_) | CheckKind::MaxLatencyMs(_) => Compiled::Limit,
            });
        }
        Ok(Scorer {
            spec: spec.clone(),
            env,
            compiled,
            variables,
            judge_schema: Schema::compile(&judge::reply_schema())?,
        })
    }

    /// The compiled schema of a judge's reply.
    pub fn judge_schema(&self) -> &Schema {
        &self.judge_schema
    }

    /// Whether a check is a `judge`.
    pub fn has_judge(&self) -> bool {
        self.spec
            .checks
            .iter()
            .any(|c| matches!(c.kind, CheckKind::Judge { .. }))
    }

    /// Scores `line` with the grades its `judge` records hold.
    pub fn apply_recorded(&self, line: &mut ResultLine) {
        let grades: BTreeMap<String, Option<f64>> = line
            .judge
            .iter()
            .flatten()
            .map(|(k, r)| (k.clone(), r.score))
            .collect();
        self.apply(line, &|c| grades.get(&c.name).copied().flatten());
    }

    /// The job's evaluation.
    pub fn spec(&self) -> &EvalSpec {
        &self.spec
    }

    /// Checks that every column an eval template reads is one of `columns` (the input's):
    /// `Err` names the job file, the check and the variable.
    pub fn check_columns(&self, columns: &[String]) -> Result<(), String> {
        for (check, var) in &self.variables {
            if !columns.iter().any(|c| c == var) {
                let hint = crate::missing::did_you_mean(var, columns)
                    .map_or(String::new(), |m| format!(" (did you mean `{m}`?)"));
                return Err(format!(
                    "{}: check \"{check}\": the template uses `{var}`, which is not a column of the input{hint}",
                    self.spec.file
                ));
            }
        }
        Ok(())
    }

    /// The template context of `line`: its row, `row`, `output` and (when set) `expected`.
    fn context(&self, line: &ResultLine, output: &str) -> Result<Map<String, Value>, String> {
        let vars = line.vars.to_map();
        let mut ctx = vars.clone();
        ctx.insert("row".into(), Value::Object(vars));
        ctx.insert("output".into(), Value::String(output.to_string()));
        if self.spec.expected.is_some() {
            let expected = self.render(EXPECTED, &ctx)?;
            ctx.insert("expected".into(), Value::String(expected));
        }
        Ok(ctx)
    }

    fn render(&self, name: &str, ctx: &Map<String, Value>) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(crate::template::to_jinja(&Value::Object(ctx.clone()))))
            .map_err(|e| format!("template: {e}"))
    }

    /// The rubric of judge check `check` for `line` (`None`: not a judge check).
    pub fn rubric(&self, check: &CheckSpec, line: &ResultLine) -> Option<Result<String, String>> {
        let CheckKind::Judge { .. } = check.kind else {
            return None;
        };
        let text = judged_text(check, line);
        Some(text.and_then(|t| {
            let ctx = self.context(line, &t)?;
            self.render(&template_name(check), &ctx)
        }))
    }

    /// Scores `line`; `judged` gives each judge check's grade (`None`: the judge gave none).
    pub fn score(
        &self,
        line: &ResultLine,
        judged: &dyn Fn(&CheckSpec) -> Option<f64>,
    ) -> LineScore {
        let mut scores = BTreeMap::new();
        let mut unscored = BTreeMap::new();
        for (c, compiled) in self.spec.checks.iter().zip(&self.compiled) {
            let s = match &c.kind {
                CheckKind::Judge { .. } => {
                    judged(c).ok_or_else(|| "the judge gave no valid grade".to_string())
                }
                _ => self.score_one(c, compiled, line),
            };
            match s {
                Ok(v) => {
                    scores.insert(c.name.clone(), Some(v));
                }
                Err(why) => {
                    scores.insert(c.name.clone(), None);
                    unscored.insert(c.name.clone(), why);
                }
            }
        }
        let (mut total, mut weights, mut missing) = (0.0, 0.0, false);
        for c in &self.spec.checks {
            if c.weight > 0.0 {
                weights += c.weight;
                match scores.get(&c.name).copied().flatten() {
                    Some(v) => total += v * c.weight,
                    None => missing = true,
                }
            }
        }
        let score = (weights > 0.0).then(|| total / weights);
        LineScore {
            pass: !missing && score.is_none_or(|s| s + 1e-12 >= self.spec.threshold),
            scores,
            score,
            unscored,
        }
    }

    fn score_one(
        &self,
        c: &CheckSpec,
        compiled: &Compiled,
        line: &ResultLine,
    ) -> Result<f64, String> {
        match &c.kind {
            CheckKind::MaxCostUsd(max) => {
                return line
                    .cost_usd
                    .map(|cost| if cost <= *max { 1.0 } else { 0.0 })
                    .ok_or_else(|| "the row's cost is unknown".to_string());
            }
            CheckKind::MaxLatencyMs(max) => {
                return Ok(if line.latency_ms <= *max { 1.0 } else { 0.0 });
            }
            _ => {}
        }
        let text = judged_text(c, line)?;
        let norm = Norm {
            trim: c.trim,
            ignore_case: c.ignore_case,
        };
        let value = || -> Result<String, String> {
            let ctx = self.context(line, &text)?;
            self.render(&template_name(c), &ctx)
        };
        Ok(match (&c.kind, compiled) {
            (CheckKind::Equals(_), _) => checks::equals(&text, &value()?, norm),
            (CheckKind::Contains(_), _) => checks::contains(&text, &value()?, norm),
            (CheckKind::NotContains(_), _) => checks::not_contains(&text, &value()?, norm),
            (CheckKind::Number { tolerance, .. }, _) => {
                checks::number(&text, &value()?, *tolerance)?
            }
            (_, Compiled::Values(values)) => checks::one_of(&text, values, norm),
            (_, Compiled::Regex(re)) => checks::regex(&text, re, c.trim),
            (_, Compiled::Json) => checks::json_valid(&text),
            (_, Compiled::Schema(schema)) => match checks::parse_json(&text) {
                Ok(v) => {
                    if schema.check(&v).is_ok() {
                        1.0
                    } else {
                        0.0
                    }
                }
                Err(_) => 0.0,
            },
            _ => {
                return Err(format!(
                    "check type {} cannot score text",
                    c.kind.type_name()
                ));
            }
        })
    }

    /// Scores `line` in place: `scores`, `score` and `pass` on an ok line; `pass: false` and
    /// no score on an error line.
    pub fn apply(&self, line: &mut ResultLine, judged: &dyn Fn(&CheckSpec) -> Option<f64>) {
        if line.status != Status::Ok {
            line.scores = None;
            line.score = None;
            line.unscored = None;
            line.pass = Some(false);
            return;
        }
        let s = self.score(line, judged);
        line.scores = Some(s.scores);
        line.score = s.score;
        line.pass = Some(s.pass);
        line.unscored = (!s.unscored.is_empty()).then_some(s.unscored);
    }
}

/// The text a check reads: `parsed.<field>` (a string as is, anything else as JSON text) when
/// the check names a field, else `output`.
pub fn judged_text(c: &CheckSpec, line: &ResultLine) -> Result<String, String> {
    match &c.field {
        None => line
            .output
            .clone()
            .ok_or_else(|| "the line has no output".to_string()),
        Some(field) => match line.parsed.as_ref().and_then(Option::as_ref) {
            None => Err(format!(
                "field `{field}`: the line has no structured reply (`parsed`)"
            )),
            Some(parsed) => match parsed.to_map().get(field) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Null) | None => Err(format!("field `{field}` is not in `parsed`")),
                Some(other) => Ok(other.to_string()),
            },
        },
    }
}

fn template_name(c: &CheckSpec) -> String {
    format!("check:{}", c.name)
}

#[cfg(test)]
mod tests;
