//! Replicas: several model threads take batches from one endpoint's queue
//! when it outgrows one, never more than `max_replicas`; extra replicas
//! leave when idle, and with `min_replicas` 0 the model unloads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tenfold_domain::{
    Architecture, DataStats, EndpointId, Estimate, Family, FamilyPlan, JobShape, ModelVersionId, OrgId, ParamSpec, Scaling,
};
use tenfold_ml::family::{Evaluated, ModelFamily, Served, TrainJob, Trained};
use tenfold_ml::image::ImageFamily;
use tenfold_ml::train::Control;
use tenfold_ml::{MlError, Result};
use tenfold_serving::{Device, ModelFiles, Registry, Runtime, RuntimeOptions, ServeInput, ServeTarget};

/// A model that takes 40 ms a batch and answers with its thread's name.
struct Slow(ImageFamily);

impl FamilyPlan for Slow {
    fn family(&self) -> Family {
        Family::ImageClassification
    }
    fn architectures(&self) -> &[Architecture] {
        self.0.architectures()
    }
    fn hyperparameters(&self) -> &[ParamSpec] {
        self.0.hyperparameters()
    }
    fn estimate(&self, data: &DataStats, job: &JobShape<'_>) -> Estimate {
        self.0.estimate(data, job)
    }
    fn serves(&self) -> bool {
        true
    }
}

impl ModelFamily for Slow {
    fn train(&self, _: &TrainJob<'_>, _: Control<'_>) -> Result<Trained> {
        Err(MlError::Unsupported("training".into()))
    }
    fn evaluate(&self, _: &Path, _: &Path, _: &Device) -> Result<Evaluated> {
        Err(MlError::Unsupported("evaluation".into()))
    }
    fn load_for_serving(&self, _: &Path, _: &Device) -> Result<Box<dyn Served>> {
        Ok(Box::new(SlowModel))
    }
}

struct SlowModel;

impl Served for SlowModel {
    fn predict(&self, inputs: &[ServeInput]) -> Result<Vec<Value>> {
        std::thread::sleep(Duration::from_millis(40));
        let me = format!("{:?}", std::thread::current().id());
        Ok(inputs.iter().map(|_| json!(me)).collect())
    }
}

struct NoFiles;

#[async_trait::async_trait]
impl ModelFiles for NoFiles {
    async fn fetch(&self, _: OrgId, _: ModelVersionId) -> std::result::Result<PathBuf, String> {
        Ok(std::env::temp_dir())
    }
}

fn runtime() -> Runtime {
    let families = Registry::default().with(Arc::new(Slow(ImageFamily::new())));
    Runtime::new(families, Device::Cpu, Arc::new(NoFiles), RuntimeOptions::default())
}

fn target(scaling: Scaling) -> ServeTarget {
    let version = ModelVersionId::new();
    ServeTarget {
        org: OrgId::new(),
        endpoint: EndpointId::new(),
        label: "slow".into(),
        version,
        family: Family::ImageClassification,
        scaling: scaling.check().unwrap(),
        live: vec![version],
    }
}

/// `n` single-input requests at once; the threads that answered them.
async fn burst(runtime: &Runtime, target: &ServeTarget, n: usize) -> HashSet<String> {
    let calls = (0..n).map(|i| {
        let (runtime, target) = (runtime.clone(), target.clone());
        tokio::spawn(async move {
            let input = ServeInput::Json(json!(i));
            let answer = runtime.infer(&target, vec![input]).await.unwrap();
            answer.outputs[0].as_str().unwrap().to_owned()
        })
    });
    let handles: Vec<_> = calls.collect();
    let mut threads = HashSet::new();
    for h in handles {
        threads.insert(h.await.unwrap());
    }
    threads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_queue_is_answered_by_several_replicas_up_to_the_maximum() {
    let runtime = runtime();
    let scaling = Scaling { max_replicas: 3, max_batch_size: 1, max_batch_delay_ms: 0, ..Scaling::DEFAULT };
    let target = target(scaling);
    let threads = burst(&runtime, &target, 40).await;
    assert!(threads.len() > 1, "one thread answered all 40 requests: {threads:?}");
    assert!(threads.len() <= 3, "more replicas than maxReplicas: {threads:?}");
    let status = runtime.status();
    assert!(status[0].replicas <= 3 && status[0].replicas >= 1, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_when_the_maximum_is_one() {
    let runtime = runtime();
    let scaling = Scaling { max_replicas: 1, max_batch_size: 1, max_batch_delay_ms: 0, ..Scaling::DEFAULT };
    let threads = burst(&runtime, &target(scaling), 20).await;
    assert_eq!(threads.len(), 1, "{threads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_replicas_leave_when_idle_and_the_model_unloads_at_min_zero() {
    let runtime = runtime();
    let scaling = Scaling { min_replicas: 0, max_replicas: 3, max_batch_size: 1, max_batch_delay_ms: 0, idle_unload_seconds: 1 };
    let target = target(scaling);
    burst(&runtime, &target, 30).await;
    let mut unloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = &runtime.status()[0];
        if !s.loaded && s.replicas == 0 {
            unloaded = true;
            break;
        }
    }
    assert!(unloaded, "still loaded after 10 s idle: {:?}", runtime.status());
    // The next request loads it again and is answered.
    assert_eq!(burst(&runtime, &target, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_stay_loaded_when_idle() {
    let runtime = runtime();
    let scaling = Scaling { min_replicas: 2, max_replicas: 3, max_batch_size: 1, max_batch_delay_ms: 0, idle_unload_seconds: 1 };
    let target = target(scaling);
    burst(&runtime, &target, 30).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let s = &runtime.status()[0];
    assert!(s.loaded, "{s:?}");
    assert_eq!(s.replicas, 2, "extra replicas leave, the minimum stays: {s:?}");
}
