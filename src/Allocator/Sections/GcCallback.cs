using System.Runtime.ConstrainedExecution;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// Calls back after every garbage collection until the callback returns false or its target is
/// collected: an unreachable object whose finalizer makes the next one (unlike the runtime's
/// Gen2GcCallback, which re-registers itself and so is seen only by gen2 collections: the heap can
/// run out under a hard limit before one comes). The target is held weakly.
/// </summary>
internal sealed class GcCallback : CriticalFinalizerObject
{
    private readonly Func<object, bool> callback;
    private readonly GCHandle target;

    private GcCallback(Func<object, bool> callback, GCHandle target)
    {
        this.callback = callback;
        this.target = target;
    }

    public static void Register(Func<object, bool> callback, object target) => _ = new GcCallback(callback, GCHandle.Alloc(target, GCHandleType.Weak));

    ~GcCallback()
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
        if (again) _ = new GcCallback(callback, target);
        else target.Free();
    }
}
