//! The runtime for filters' work off the request path (refreshing remote key sets), on a
//! thread of its own so that it neither competes with nor depends on the listeners' workers.

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
