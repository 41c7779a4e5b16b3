//! Every `ServerHandler` method of the guarded handler: the requests the policy governs go
//! through it (`call_tool` and `list_tools` in the crate root; `read_resource`, `subscribe`,
//! `get_prompt`, `complete` and the resource and prompt lists in `surface`), every other one
//! is forwarded to the inner handler as it is.
//!
//! `get_info` is the inner handler's, so the guard advertises exactly its capabilities. A
//! request of a capability the inner handler does not advertise (`tools/list`, `resources/*`,
//! `prompts/*`, `completion/complete`, `logging/setLevel`) is answered `-32601` Method not
//! found and does not reach it, even when the inner handler implements the method: rmcp 3.11
//! answers so only from its default methods, and the guard forwards every method.
//! `tools/call` is not checked here: it goes through the policy and then to the inner handler,
//! as before (checking would cost a `get_info`, with its allocations, on every call).
//!
//! The list of methods mirrors rmcp's own forwarding impls (for `Box` and `Arc`); the test
//! `tests/delegation.rs` reads the trait's definition in the rmcp sources being built against
//! and fails when a method is missing here, so an rmcp upgrade that adds one is caught.
#![allow(deprecated)]

use std::borrow::Cow;
use std::future::Future;

use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{ErrorData as McpError, ServerHandler};

use mcp_policy::AsyncDecider;

use crate::Guarded;

impl<H: ServerHandler, D: AsyncDecider + 'static> Guarded<H, D> {
    /// Whether the inner handler advertises a capability (asked of its `get_info` on each
    /// request, as rmcp's default methods do).
    pub(crate) fn advertises(&self, has: impl FnOnce(&ServerCapabilities) -> bool) -> bool {
        has(&self.inner.get_info().capabilities)
    }
}

impl<H: ServerHandler, D: AsyncDecider + 'static> ServerHandler for Guarded<H, D> {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + Send + '_ {
        self.inner.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + Send + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.completions.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<CompleteRequestMethod>());
            }
            self.guarded_complete(request, context).await
        }
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.logging.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<SetLevelRequestMethod>());
            }
            self.inner.set_level(request, context).await
        }
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.prompts.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<GetPromptRequestMethod>());
            }
            self.guarded_prompt(request, context).await
        }
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.prompts.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<ListPromptsRequestMethod>());
            }
            self.filtered_prompts(request, context).await
        }
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.resources.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<ListResourcesRequestMethod>());
            }
            self.filtered_resources(request, context).await
        }
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.resources.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<
                    ListResourceTemplatesRequestMethod,
                >());
            }
            self.filtered_templates(request, context).await
        }
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.resources.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<ReadResourceRequestMethod>());
            }
            self.guarded_read(request, context).await
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.inner.listen(context)
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.resources.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<SubscribeRequestMethod>());
            }
            self.guarded_subscribe(request, context).await
        }
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        let advertised = self.advertises(|c| c.resources.is_some());
        async move {
            if !advertised {
                return Err(McpError::method_not_found::<UnsubscribeRequestMethod>());
            }
            self.inner.unsubscribe(request, context).await
        }
    }

    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + Send + '_ {
        self.guarded_call(request, context)
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, McpError>> + Send + '_ {
        self.filtered_list(request, context)
    }

    // Used by rmcp's HTTP transport to check a call's standard headers against the tool's
    // schema: a tool the policy never allows is unknown there too, as in `tools/list`.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        let tool = self.inner.get_tool(name)?;
        self.engine().policy().can_ever_allow(name).then_some(tool)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + Send + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + Send + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + Send + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + Send + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + Send + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + Send + '_ {
        self.inner.read_resource_directory(request, context)
    }
}
