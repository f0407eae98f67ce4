//! The thread that runs work off the request path (refreshing remote key sets, probing
//! backend hosts), with a runtime of its own so that it neither competes with nor depends on
//! the listeners' workers. What runs on it is handed to filters and backends as a
//! [`Background`] (`switchyard_filters::Background`: the runtime's handle and the store of
//! state that outlives one config).

use std::sync::Arc;

use switchyard_filters::Background;

/// Starts the background thread and returns what filters are built with. The thread lives
/// as long as the process.
pub fn start() -> std::io::Result<Arc<Background>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("background")
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("background".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(Arc::new(Background::new(handle)))
}
