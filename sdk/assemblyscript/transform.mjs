// transform.mjs - an asc transform that gives the ABI exports their names:
// AssemblyScript cannot spell "handle-send", so sdk/assemblyscript/assembly/abi.ts
// exports handle_send and this renames it (and the other handlers).
const RENAMES = {
  handle_send: "handle-send",
  handle_request: "handle-request",
  handle_child_exit: "handle-child-exit",
  handle_child_error: "handle-child-error",
  handle_timer: "handle-timer",
  handle_channel_open: "handle-channel-open",
  handle_channel_message: "handle-channel-message",
  handle_channel_close: "handle-channel-close",
};

// asc gives the class its program and binaryen before it makes one (no import
// of "assemblyscript/transform" needed, so the file works from any folder).
export default class TheaterExports {
  afterCompile(module) {
    const found = [];
    for (let i = 0; i < module.getNumExports(); i++) {
      const info = this.binaryen.getExportInfo(module.getExportByIndex(i));
      if (info.kind === this.binaryen.ExternalFunction && RENAMES[info.name])
        found.push(info);
    }
    for (const info of found) {
      module.removeExport(info.name);
      module.addFunctionExport(info.value, RENAMES[info.name]);
    }
  }
}
