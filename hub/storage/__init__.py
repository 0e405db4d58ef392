"""Storage providers that say what changed: fetch-on-notify and provider subscriptions kept alive (issue 8).

Dropbox, Microsoft Graph (OneDrive / SharePoint) and Google Drive notify only that *something* changed. For
a source with ``fetch_changes`` on, the notification is stored and acknowledged at once (as every webhook),
not routed (``route_notifications`` keeps routing it), and asks for a fetch of the account's change feed
(:mod:`hub.storage.notify`). A fetch (:mod:`hub.storage.fetch`) claims the feed by compare-and-set, reads the
provider's changes from the stored cursor with the source's OAuth2 credentials (:mod:`hub.storage.credentials`)
and stores one event per changed item (``file.added``, ``folder.deleted``…) with its deliveries **in the same
transaction** that advances the cursor (:mod:`hub.storage.cursors`, :mod:`hub.storage.store`): a crash repeats
no event and loses none. Notifications arriving during a fetch make it run again; many notifications for one
account make one fetch.

Provider knowledge lives in :mod:`hub.storage.providers` (request builders and pure parsers of the documented
answers; the HTTP client is injected: :mod:`hub.storage.client`). Subscriptions — Graph subscriptions, Drive
watch channels — are created, renewed and deleted by :mod:`hub.storage.subscriptions`, from a scheduled job of
the worker (:mod:`hub.storage.loop`) that several workers may run at once (leases by compare-and-set).
"""
