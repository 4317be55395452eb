"""Model versions with roles (primary, candidate as canary or shadow, previous), changed at run
time: the routing state on disk (:mod:`.state`), the front's routing (:mod:`.routing`), the
shadow comparisons (:mod:`.shadow`), the admin API (:mod:`.admin_http`) and its CLI
(``python -m model_bundle.admin``)."""
