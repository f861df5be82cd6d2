// Node's `https` module, without outbound network for now: see net_absent.js.
(function (fnbox) {
  "use strict";
  return fnbox.lib("net_absent").http("https");
});
