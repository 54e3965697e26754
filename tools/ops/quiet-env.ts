// Imported before anything else: the logger and the SDK read these when their modules load.
// The pinned SDK runs on Node 20; its notice about future versions would only clutter the output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Connector and store logs are for Lambda (JSON on stdout); they would break --json. The
// command reports what went wrong itself.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
