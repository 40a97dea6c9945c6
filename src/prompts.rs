//! The job's prompts: one per prompt variant (`[[variants]]`), or the job's own request as the
//! variant `None` when it defines none. Each holds its compiled templates and the `[request]`
//! fields it overrides; [`Prompts::arms`] gives the dispatcher, the scan and the estimate each
//! variant's request and body builder. Every row is sent for every prompt x every model.

use crate::input::Row;
use crate::job::{Job, RequestSpec, Variant};
use crate::request::BodyBuilder;
use crate::template::Template;

/// One variant's compiled templates.
#[derive(Debug)]
pub struct Prompt {
    /// The variant's name (`None`: the job defines no variants).
    pub variant: Option<String>,
    /// Its `system` and `prompt` templates.
    pub template: Template,
    /// The fields it overrides (`None`: the job's request as it is).
    overrides: Option<Variant>,
}

impl Prompt {
    /// The request this variant's rows are sent with: `base` (the job's `[request]`, models
    /// as checked) with the variant's fields over it.
    pub fn spec(&self, base: &RequestSpec) -> RequestSpec {
        match &self.overrides {
            Some(v) => v.apply(base),
            None => base.clone(),
        }
    }

    /// The messages of `row` for this variant; an error names the variant when there is one.
    pub fn messages(&self, row: &Row) -> Result<Vec<serde_json::Value>, String> {
        self.template.messages(row).map_err(|e| self.named(e))
    }

    /// `msg`, prefixed with the variant's name when there is one.
    pub fn named(&self, msg: String) -> String {
        match &self.variant {
            Some(v) => format!("variant {v}: {msg}"),
            None => msg,
        }
    }
}

/// Every prompt of a job, in `[[variants]]` order (one, `None`, without variants).
#[derive(Debug)]
pub struct Prompts {
    list: Vec<Prompt>,
}

/// A variant's request ready to send: its name, templates, request and body builder.
pub struct Arm<'a> {
    /// The variant (`None`: no variants).
    pub variant: Option<&'a str>,
    /// Its compiled prompt.
    pub prompt: &'a Prompt,
    /// Its request (the job's with the variant's fields over it).
    pub spec: RequestSpec,
    /// Its body builder.
    pub builder: BodyBuilder,
}

impl Prompts {
    /// Compiles every variant's templates (a syntax error names the variant).
    pub fn compile(job: &Job) -> Result<Prompts, String> {
        if job.variants.is_empty() {
            let r = &job.request;
            let template = Template::new(r.system.as_deref(), r.prompt.as_deref())?;
            return Ok(Prompts::single(template));
        }
        let list = job
            .variants
            .iter()
            .map(|v| {
                let spec = v.apply(&job.request);
                let template = Template::new(spec.system.as_deref(), spec.prompt.as_deref())
                    .map_err(|e| format!("variant {}: {e}", v.name))?;
                Ok(Prompt {
                    variant: Some(v.name.clone()),
                    template,
                    overrides: Some(v.clone()),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Prompts { list })
    }

    /// One prompt of no variant with these templates.
    pub fn single(template: Template) -> Prompts {
        Prompts {
            list: vec![Prompt {
                variant: None,
                template,
                overrides: None,
            }],
        }
    }

    /// The prompts, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Prompt> {
        self.list.iter()
    }

    /// The first prompt (there is always one).
    pub fn first(&self) -> &Prompt {
        &self.list[0]
    }

    /// The variants' names, in order (`[None]` without variants).
    pub fn variants(&self) -> Vec<Option<String>> {
        self.list.iter().map(|p| p.variant.clone()).collect()
    }

    /// Each variant's request over `base` (the job's request, models as checked).
    pub fn arms(&self, base: &RequestSpec) -> Vec<Arm<'_>> {
        self.list
            .iter()
            .map(|p| {
                let spec = p.spec(base);
                Arm {
                    variant: p.variant.as_deref(),
                    prompt: p,
                    builder: BodyBuilder::new(&spec),
                    spec,
                }
            })
            .collect()
    }
}
