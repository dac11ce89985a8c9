using System.Runtime.ConstrainedExecution;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// Calls back after every gen2 collection until the callback returns false or its target is
/// collected: an object that is finalized at each gen2 GC and registers itself again (the runtime's
/// own Gen2GcCallback, on which ArrayPool.Shared trims). The target is held weakly.
/// </summary>
internal sealed class Gen2GcCallback : CriticalFinalizerObject
{
    private readonly Func<object, bool> callback;
    private GCHandle target;

    private Gen2GcCallback(Func<object, bool> callback, object target)
    {
        this.callback = callback;
        this.target = GCHandle.Alloc(target, GCHandleType.Weak);
    }

    public static void Register(Func<object, bool> callback, object target) => _ = new Gen2GcCallback(callback, target);

    ~Gen2GcCallback()
    {
        object? alive = target.Target;
        bool again = false;
        try
        {
            again = alive is not null && callback(alive);
        }
        catch (Exception)
        {
            // A finalizer must not throw; a failing callback ends the registration.
        }
        if (again) GC.ReRegisterForFinalize(this);
        else target.Free();
    }
}
