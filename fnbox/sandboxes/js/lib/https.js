// Node's `https` client: see httpclient.js.
(function (fnbox) {
  "use strict";
  return fnbox.lib("httpclient")("https");
});
