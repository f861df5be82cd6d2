// Node's `dns` module, without outbound network for now: see net_absent.js.
(function (fnbox) {
  "use strict";
  return fnbox.lib("net_absent").dns();
});
