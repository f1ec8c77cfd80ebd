//! Sets `has_python_worker` when the official Python worker's venv is
//! there (or on CI), so the conformance test is ignored, not passed,
//! without it (see `agent_host_capability`).

fn main() {
    agent_host_capability::build_script(&[agent_host_capability::Capability::PythonWorker]);
}
