// Node's `http` client: see httpclient.js.
(function (fnbox) {
  "use strict";
  return fnbox.lib("httpclient")("http");
});
